import { hostname } from "node:os";
import { z } from "zod";
import type { EtcdConnection } from "../etcd/client.js";
import { secret, url } from "../util/zod.js";

/**
 * The `store:` section: `driver: sqlite` (one file, one instance; the default) or
 * `driver: etcd` (several lifeboat instances share one truth; one of them leads).
 */

export const sqliteStoreSchema = z.strictObject({
  driver: z.literal("sqlite").describe("One SQLite file: one lifeboat instance."),
  path: z.string().default("./var/lifeboat.db").describe("SQLite database file (WAL mode; the directory is created)."),
});

export const etcdTlsSchema = z
  .strictObject({
    ca_file: z.string().min(1).describe("PEM file of the CA that signed etcd's server certificate."),
    cert_file: z.string().min(1).optional().describe("Client certificate (PEM) when etcd requires client-certificate auth."),
    key_file: z.string().min(1).optional().describe("Private key (PEM) of cert_file."),
  })
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), "give both cert_file and key_file, or neither");

export const etcdStoreSchema = z
  .strictObject({
    driver: z.literal("etcd").describe("etcd: several instances share one journal; one leader acts."),
    endpoints: z
      .array(url())
      .min(1)
      .default(["http://127.0.0.1:2379"])
      .describe("etcd client URLs (https:// with `tls`). Every member of the cluster, so the client can fail over."),
    prefix: z
      .string()
      .min(1)
      .default("/lifeboat/")
      .transform((p) => (p.endsWith("/") ? p : `${p}/`))
      .describe("Key prefix of everything lifeboat writes; instances that share it share one journal and one leader."),
    tls: etcdTlsSchema.optional().describe("TLS to etcd; without it the endpoints must be http://."),
    username: z.string().min(1).optional().describe("etcd user (etcd auth enabled)."),
    password: secret().optional().describe("Password of `username`; prefer `password_file`."),
    instance_id: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9._:@-]+$/, "letters, digits and . _ : @ - only")
      .optional()
      .transform((v) => v ?? hostname())
      .describe("This instance's name in leader election and host claims; must differ between instances. Default: the host name."),
    lease_ttl_seconds: z
      .number()
      .int()
      .min(2)
      .max(300)
      .default(10)
      .describe(
        "TTL of the leader's etcd lease: a dead leader is replaced after about this long. Keep-alives go every TTL/3; " +
          "a leader that has not renewed for TTL/2 stops acting by itself.",
      ),
    request_timeout_seconds: z.number().positive().default(5).describe("Deadline of one etcd request."),
    dial_timeout_seconds: z.number().positive().default(5).describe("Deadline to connect to an etcd endpoint."),
  })
  .refine((c) => (c.username === undefined) === (c.password === undefined), "give both username and password, or neither")
  .refine((c) => c.tls !== undefined || c.endpoints.every((e) => e.startsWith("http://")), "https:// endpoints need a `tls` section (ca_file)");

/** `driver` defaults to sqlite, so `store: {}` or no store section at all means one SQLite file. */
export const storeSchema = z.preprocess(
  (v) => (v !== null && typeof v === "object" && !Array.isArray(v) && !("driver" in v) ? { ...v, driver: "sqlite" } : v),
  z.discriminatedUnion("driver", [sqliteStoreSchema, etcdStoreSchema]),
);

export type SqliteStoreConfig = z.output<typeof sqliteStoreSchema>;
export type EtcdStoreConfig = z.output<typeof etcdStoreSchema>;
export type StoreConfig = z.output<typeof storeSchema>;

/** How to reach etcd, from the `store:` section (driver etcd). */
export function etcdConnectionFromConfig(cfg: EtcdStoreConfig): EtcdConnection {
  return {
    endpoints: cfg.endpoints,
    ...(cfg.tls ? { tls: { caFile: cfg.tls.ca_file, ...(cfg.tls.cert_file ? { certFile: cfg.tls.cert_file } : {}), ...(cfg.tls.key_file ? { keyFile: cfg.tls.key_file } : {}) } } : {}),
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    requestTimeoutMs: cfg.request_timeout_seconds * 1000,
    dialTimeoutMs: cfg.dial_timeout_seconds * 1000,
  };
}
