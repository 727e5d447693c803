import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type * as Cockatiel from "cockatiel";
import type { Etcd3, IOptions } from "etcd3";
import { etcd3 } from "./lazy.js";
import type { Secret } from "../util/secret.js";

const require = createRequire(import.meta.url);

/** How to reach etcd; built from the `store:` section (store/config.ts) or directly in tests. */
export interface EtcdConnection {
  endpoints: string[];
  tls?: { caFile: string; certFile?: string; keyFile?: string };
  username?: string;
  password?: Secret;
  /** Bound of one call, ms (lifeboat's own: see withDeadline). */
  requestTimeoutMs?: number;
  dialTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

/**
 * The gRPC deadline of a unary call, as a multiple of the request timeout: a backstop only.
 * lifeboat bounds each call itself (withDeadline) and lets a late answer arrive unread,
 * because the client library answers a call past its gRPC deadline by closing the
 * connection, which cancels every other call in flight on it.
 */
const GRPC_DEADLINE_FACTOR = 4;

/**
 * An etcd v3 client. Every unary call gets a (backstop) deadline, so a hung or partitioned
 * etcd turns into an error instead of a promise that never settles.
 *
 * The library's own fault handling is replaced. By default it retried a call etcd did not
 * answer (three tries, tripling its time), and after three such errors it opened a circuit
 * breaker that failed every call, lease keep-alives included, for 5 s after etcd answered
 * again: one slow moment of etcd became a 5 s outage of the journal. Now only a call that
 * could not reach an endpoint is tried again (on another endpoint when there are several),
 * and nothing holds calls back once etcd answers. The callers have their own retry policies.
 */
export function createEtcdClient(c: EtcdConnection): Etcd3 {
  const timeout = c.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const { noop, retry, handleWhen, ConstantBackoff } = require("cockatiel") as typeof Cockatiel;
  const unreachable = handleWhen((err) => err instanceof etcd3().GRPCUnavailableError);
  const options: IOptions = {
    hosts: c.endpoints,
    dialTimeout: c.dialTimeoutMs ?? 5_000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout * GRPC_DEADLINE_FACTOR }),
    faultHandling: {
      host: () => noop,
      global: retry(unreachable, { maxAttempts: Math.max(1, c.endpoints.length - 1), backoff: new ConstantBackoff(50) }),
    },
  };
  if (c.tls) {
    options.credentials = {
      rootCertificate: readFileSync(c.tls.caFile),
      ...(c.tls.keyFile ? { privateKey: readFileSync(c.tls.keyFile) } : {}),
      ...(c.tls.certFile ? { certChain: readFileSync(c.tls.certFile) } : {}),
    };
  }
  if (c.username !== undefined && c.password !== undefined) {
    options.auth = { username: c.username, password: c.password.reveal() };
  }
  return new (etcd3().Etcd3)(options);
}
