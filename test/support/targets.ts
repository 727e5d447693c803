import { randomUUID } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Fake scrape targets for the Prometheus harness: one tiny node-exporter per compute host
 * (so `up{job="node", host=…}` is 1) that can be stopped — its listener closes, so scrapes
 * get "connection refused" and `up` becomes 0, as for a dead node — and started again on the
 * same address; and one openstack-exporter serving openstack_nova_agent_state per host, in
 * the exporter's format (labels adminState, disabledReason, hostname, id, service, zone;
 * 1 = Nova reports the service up), with setters for each host's state.
 */
export interface FakeComputeNodes {
  readonly hosts: readonly string[];
  /** host:port of the host's node-exporter. */
  nodeAddress(host: string): string;
  /** host:port of the openstack-exporter. */
  readonly openstackExporterAddress: string;
  /**
   * Scrape configs for startPrometheus: job "node" with target labels `host` (and `rack`
   * when given), job "openstack-exporter" with honor_labels — as in
   * config/prometheus.example.yml.
   */
  scrapeConfigs(): Record<string, unknown>[];
  /** The host's node-exporter stops answering (listener and open connections closed). */
  stop(host: string): Promise<void>;
  /**
   * The host dies the way a powered-off or hung machine does: connections are not refused,
   * nothing answers, so every scrape runs into its scrape_timeout. start() ends it.
   */
  hang(host: string): void;
  /** The host's node-exporter answers again, on the same address. */
  start(host: string): Promise<void>;
  /** What Nova reports for the host's nova-compute: 1 up, 0 down. */
  setAgentState(host: string, state: 0 | 1): void;
  /** Enable or disable the host's nova-compute (the exporter's adminState label). */
  setAdminState(host: string, adminState: "enabled" | "disabled", disabledReason?: string): void;
  stopOpenStackExporter(): Promise<void>;
  startOpenStackExporter(): Promise<void>;
  /** How many times the host's node-exporter was scraped. */
  scrapes(host: string): number;
  /** Closes every listener. */
  close(): Promise<void>;
}

export interface FakeComputeNodesOptions {
  /** Failure domain per host (the `rack` target label); none when absent. */
  racks?: Record<string, string>;
  /** Non-compute Nova services the exporter also reports (on this controller host). */
  controllerHost?: string;
  /**
   * Asked at every scrape of the openstack-exporter, as the real one asks Nova: the host's
   * nova-compute as Nova reports it now (a simulated cloud's os-services). Replaces the
   * setters' values for the hosts it answers for.
   */
  novaView?: (host: string) => Pick<AgentState, "state" | "adminState" | "disabledReason"> | undefined;
}

export interface AgentState {
  id: string;
  state: 0 | 1;
  adminState: "enabled" | "disabled";
  disabledReason: string;
}

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** An HTTP target on 127.0.0.1 that can stop listening and listen again on its port. */
class Target {
  #server: Server | undefined;
  #port = 0;
  /** Requests held unanswered while hanging. */
  #held = new Set<ServerResponse>();
  #hanging = false;
  scrapes = 0;

  constructor(readonly name: string, private readonly body: () => string) {}

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  hang(): void {
    this.#hanging = true;
  }

  async start(): Promise<void> {
    this.#release();
    if (this.#server !== undefined) return;
    const server = createServer((req, res) => {
      if (this.#hanging) {
        this.#held.add(res);
        res.once("close", () => this.#held.delete(res));
        return;
      }
      if (req.url !== "/metrics") {
        res.writeHead(404).end("not found\n");
        return;
      }
      this.scrapes++;
      res.writeHead(200, { "content-type": CONTENT_TYPE }).end(this.body());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        reject(err.code === "EADDRINUSE" ? new Error(`${this.name}: port ${this.#port} was taken while it was stopped`) : err);
      });
      server.listen(this.#port, "127.0.0.1", () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stop hanging: the held requests are dropped (their scrapes have timed out long ago). */
  #release(): void {
    this.#hanging = false;
    for (const res of this.#held) res.destroy();
    this.#held.clear();
  }

  async stop(): Promise<void> {
    this.#release();
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    // Prometheus keeps scrape connections alive: close them too, or the "dead" node answers.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

export async function startFakeComputeNodes(
  hosts: readonly string[],
  opts: FakeComputeNodesOptions = {},
): Promise<FakeComputeNodes> {
  const agents = new Map<string, AgentState>(
    hosts.map((h) => [h, { id: randomUUID(), state: 1, adminState: "enabled", disabledReason: "" }]),
  );
  const controller = opts.controllerHost ?? "controller-1";
  const controllerServices = ["nova-scheduler", "nova-conductor"].map((service) => ({ service, id: randomUUID() }));

  const nodes = new Map(hosts.map((h) => [h, new Target(`node-exporter ${h}`, () => nodeExporterMetrics())]));
  const exporter = new Target("openstack-exporter", () => {
    const lines = [
      "# HELP openstack_nova_agent_state agent_state",
      "# TYPE openstack_nova_agent_state counter",
      ...controllerServices.map(
        (s) => `openstack_nova_agent_state{${labels({ adminState: "enabled", disabledReason: "", hostname: controller, id: s.id, service: s.service, zone: "internal" })}} 1`,
      ),
      ...[...agents.entries()].map(([host, set]) => {
        const a = { ...set, ...opts.novaView?.(host) };
        return `openstack_nova_agent_state{${labels({ adminState: a.adminState, disabledReason: a.disabledReason, hostname: host, id: a.id, service: "nova-compute", zone: "nova" })}} ${a.state}`;
      }),
      "# HELP openstack_nova_up up",
      "# TYPE openstack_nova_up gauge",
      "openstack_nova_up 1",
    ];
    return `${lines.join("\n")}\n`;
  });

  const all = [...nodes.values(), exporter];
  try {
    for (const t of all) await t.start();
  } catch (err) {
    await Promise.all(all.map((t) => t.stop()));
    throw err;
  }

  const node = (host: string): Target => {
    const t = nodes.get(host);
    if (t === undefined) throw new Error(`unknown host ${host}`);
    return t;
  };
  const agent = (host: string): AgentState => {
    const a = agents.get(host);
    if (a === undefined) throw new Error(`unknown host ${host}`);
    return a;
  };

  return {
    hosts,
    nodeAddress: (host) => node(host).address,
    openstackExporterAddress: exporter.address,
    scrapeConfigs: () => [
      {
        job_name: "node",
        static_configs: hosts.map((host) => ({
          targets: [node(host).address],
          labels: { host, ...(opts.racks?.[host] === undefined ? {} : { rack: opts.racks[host] }) },
        })),
      },
      { job_name: "openstack-exporter", honor_labels: true, static_configs: [{ targets: [exporter.address] }] },
    ],
    stop: (host) => node(host).stop(),
    hang: (host) => node(host).hang(),
    start: (host) => node(host).start(),
    setAgentState(host, state) {
      agent(host).state = state;
    },
    setAdminState(host, adminState, disabledReason = "") {
      const a = agent(host);
      a.adminState = adminState;
      a.disabledReason = adminState === "disabled" ? disabledReason : "";
    },
    stopOpenStackExporter: () => exporter.stop(),
    startOpenStackExporter: () => exporter.start(),
    scrapes: (host) => node(host).scrapes,
    close: async () => {
      await Promise.all(all.map((t) => t.stop()));
    },
  };
}

function nodeExporterMetrics(): string {
  const now = Date.now() / 1000;
  return [
    "# HELP node_exporter_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
    "# TYPE node_exporter_build_info gauge",
    'node_exporter_build_info{branch="debian/sid",goarch="amd64",goos="linux",goversion="go1.19.8",revision="1.5.0-1",tags="netgo osusergo static_build",version="1.5.0"} 1',
    "# HELP node_load1 1m load average.",
    "# TYPE node_load1 gauge",
    "node_load1 0.42",
    "# HELP node_time_seconds System time in seconds since epoch (1970).",
    "# TYPE node_time_seconds gauge",
    `node_time_seconds ${now.toFixed(3)}`,
    "",
  ].join("\n");
}

/** Prometheus text-format label pairs, values escaped. */
function labels(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",");
}
