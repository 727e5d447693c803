import type { Etcd3 } from "etcd3";
import { silentLogger, type Logger } from "../logging.js";
import type { EtcdStoreConfig } from "../store/config.js";
import { EtcdStore } from "../store/etcd.js";
import { HostClaims } from "../ha/claims.js";
import { createEtcdClient } from "../etcd/client.js";
import { etcdConnectionFromConfig } from "../store/config.js";
import { LeaderElection } from "../ha/leader.js";

/** Everything an instance needs for active-passive HA, on one etcd client. */
export interface EtcdHa {
  readonly client: Etcd3;
  readonly store: EtcdStore;
  readonly election: LeaderElection;
  readonly claims: HostClaims;
  /** Stop campaigning (a leader resigns), close the store and the client. */
  close(): Promise<void>;
}

/**
 * Build the etcd store, the leader election and the host claims from the `store:` section
 * (driver etcd). The caller runs `store.init()` and `election.start()`.
 */
export function createEtcdHa(cfg: EtcdStoreConfig, logger: Logger = silentLogger()): EtcdHa {
  const client = createEtcdClient(etcdConnectionFromConfig(cfg));
  const store = EtcdStore.fromConfig(cfg, client);
  const election = new LeaderElection({
    client,
    prefix: cfg.prefix,
    instanceId: cfg.instance_id,
    ttlSeconds: cfg.lease_ttl_seconds,
    logger,
  });
  const claims = new HostClaims({ client, prefix: cfg.prefix, leadership: election, requestTimeoutMs: cfg.request_timeout_seconds * 1000, logger });
  return {
    client,
    store,
    election,
    claims,
    close: async () => {
      await election.stop();
      await store.close();
      client.close();
    },
  };
}
