import { performance } from "node:perf_hooks";
import type { Etcd3 } from "etcd3";
import { createEtcdClient } from "../../src/etcd/client.js";
import { LeaderElection, type LeaderElectionOptions } from "../../src/ha/leader.js";
import { uniquePrefix } from "../kit/config.js";

/** Short timings for tests: TTL 3 s → keep-alive every 1 s, a leader trusts a renewal 1.5 s. */
export const TTL_MS = 3_000;
export const FAST: Partial<LeaderElectionOptions> = { ttlSeconds: TTL_MS / 1000, campaignIntervalMs: 200, requestTimeoutMs: 1_000 };

export interface Candidate {
  readonly id: string;
  readonly client: Etcd3;
  readonly election: LeaderElection;
  /** Every leadership change, on the shared monotonic clock. */
  readonly timeline: { leader: boolean; at: number }[];
  /** When this candidate last became leader / stopped being leader (monotonic ms). */
  lastUp(): number | undefined;
  lastDown(): number | undefined;
}


/** Candidates of one election (one prefix), each with its own client, cleaned up together. */
export class Candidates {
  readonly #all: Candidate[] = [];
  readonly #clients: Etcd3[] = [];

  constructor(
    readonly endpoint: string,
    readonly prefix: string = uniquePrefix(),
  ) {}

  client(endpoint: string = this.endpoint): Etcd3 {
    const c = createEtcdClient({ endpoints: [endpoint], requestTimeoutMs: 1_000 });
    this.#clients.push(c);
    return c;
  }

  add(id: string, opts: { endpoint?: string; prefix?: string; start?: boolean } & Partial<LeaderElectionOptions> = {}): Candidate {
    const { endpoint, prefix, start, ...rest } = opts;
    const client = this.client(endpoint ?? this.endpoint);
    const election = new LeaderElection({ ...FAST, ...rest, client, prefix: prefix ?? this.prefix, instanceId: id });
    const timeline: { leader: boolean; at: number }[] = [];
    election.onChange((leader) => timeline.push({ leader, at: performance.now() }));
    const c: Candidate = {
      id,
      client,
      election,
      timeline,
      lastUp: () => timeline.filter((t) => t.leader).at(-1)?.at,
      lastDown: () => timeline.filter((t) => !t.leader).at(-1)?.at,
    };
    this.#all.push(c);
    if (start !== false) election.start();
    return c;
  }

  leaders(): Candidate[] {
    return this.#all.filter((c) => c.election.isLeader());
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#all.map((c) => c.election.stop()));
    for (const c of this.#clients) c.close();
  }
}
