import { readFileSync } from "node:fs";
import type { Etcd3, IOptions } from "etcd3";
import { etcd3 } from "./lazy.js";
import type { Secret } from "../util/secret.js";

/** How to reach etcd; built from the `store:` section (store/config.ts) or directly in tests. */
export interface EtcdConnection {
  endpoints: string[];
  tls?: { caFile: string; certFile?: string; keyFile?: string };
  username?: string;
  password?: Secret;
  /** Deadline of one unary request (each try), ms. */
  requestTimeoutMs?: number;
  dialTimeoutMs?: number;
}

/**
 * An etcd v3 client. Every unary call gets a deadline, so a hung or partitioned etcd
 * turns into an error instead of a promise that never settles.
 */
export function createEtcdClient(c: EtcdConnection): Etcd3 {
  const timeout = c.requestTimeoutMs ?? 5_000;
  const options: IOptions = {
    hosts: c.endpoints,
    dialTimeout: c.dialTimeoutMs ?? 5_000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
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
