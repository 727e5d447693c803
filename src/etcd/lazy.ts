import { createRequire } from "node:module";
import type * as Etcd3Module from "etcd3";

const require = createRequire(import.meta.url);
let loaded: typeof Etcd3Module | undefined;

/**
 * The etcd3 package, loaded on first use. It brings gRPC, protobufjs and OpenTelemetry
 * (~14 MB of resident memory): an instance on the SQLite store never needs them, yet
 * importing the HA modules loaded them at start.
 */
export function etcd3(): typeof Etcd3Module {
  return (loaded ??= require("etcd3") as typeof Etcd3Module);
}
