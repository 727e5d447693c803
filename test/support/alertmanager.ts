import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { jsonRequest, startDaemon, type Daemon } from "./daemon.js";

/**
 * A real Alertmanager (/usr/bin/prometheus-alertmanager) for tests: 127.0.0.1, a web port
 * chosen at run time, clustering off (`--cluster.listen-address=` empty), temporary storage.
 *
 * Its configuration is the shipped config/alertmanager.example.yml (routes, grouping,
 * inhibit rules) with three changes: the `lifeboat` receiver posts to `webhookUrl` (with
 * the bearer token read from a credentials_file, as in production), the lifeboat route's
 * timers are the given short ones, and every other receiver loses its integrations, so
 * nothing is ever sent anywhere but the test's webhook.
 */
export interface StartAlertmanagerOptions {
  /** Where the `lifeboat` receiver posts, e.g. http://127.0.0.1:PORT/api/v1/alerts. */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer …` (through http_config.authorization.credentials_file). */
  bearerToken?: string;
  /** The lifeboat route's group_wait; default "1s". */
  groupWait?: string;
  /** The lifeboat route's group_interval; default "1s". */
  groupInterval?: string;
  /** The lifeboat route's repeat_interval; default "1h". */
  repeatInterval?: string;
  /** Configuration to start from; default config/alertmanager.example.yml. */
  configFile?: string;
  readyTimeoutMs?: number;
}

export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex?: boolean;
  isEqual?: boolean;
}

/** An alert as GET /api/v2/alerts returns it. */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  fingerprint: string;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  generatorURL?: string;
  receivers: { name: string }[];
  status: { state: "unprocessed" | "active" | "suppressed"; silencedBy: string[]; inhibitedBy: string[] };
}

export interface GettableSilence {
  id: string;
  status: { state: "active" | "pending" | "expired" };
  matchers: Required<SilenceMatcher>[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

/** An alert to POST to /api/v2/alerts (as Prometheus would). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
}

export interface AlertmanagerServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly daemon: Daemon;
  /** The configuration Alertmanager runs with (YAML), for diagnostics. */
  readonly config: string;
  /** Creates a silence starting now; returns its id. A record means name="value" matchers. */
  createSilence(matchers: SilenceMatcher[] | Record<string, string>, durationMs: number, comment?: string): Promise<string>;
  expireSilence(id: string): Promise<void>;
  silences(): Promise<GettableSilence[]>;
  /** GET /api/v2/alerts, optionally filtered by name="value" label matchers. */
  alerts(filter?: Record<string, string>): Promise<GettableAlert[]>;
  postAlerts(alerts: PostableAlert[]): Promise<void>;
  stop(): Promise<void>;
}

const EXAMPLE_CONFIG = resolve(fileURLToPath(import.meta.url), "../../../config/alertmanager.example.yml");
const LIFEBOAT_RECEIVER = "lifeboat";

export async function startAlertmanager(opts: StartAlertmanagerOptions): Promise<AlertmanagerServer> {
  let config = "";
  const daemon = await startDaemon({
    name: "alertmanager",
    readyTimeoutMs: opts.readyTimeoutMs,
    spec: (port, dir) => {
      let tokenFile: string | undefined;
      if (opts.bearerToken !== undefined) {
        // A file, as in production: the token never appears in argv or the config text.
        tokenFile = join(dir, "lifeboat-webhook.token");
        writeFileSync(tokenFile, opts.bearerToken, { mode: 0o600 });
      }
      config = testConfig(readFileSync(opts.configFile ?? EXAMPLE_CONFIG, "utf8"), opts, tokenFile);
      writeFileSync(join(dir, "alertmanager.yml"), config);
      return {
        command: "/usr/bin/prometheus-alertmanager",
        args: [
          `--config.file=${join(dir, "alertmanager.yml")}`,
          `--storage.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          `--web.external-url=http://127.0.0.1:${port}`,
          "--cluster.listen-address=",
          "--log.level=warn",
        ],
        readyPath: "/-/ready",
      };
    },
  });
  const url = daemon.url;
  const api = `${url}/api/v2`;

  return {
    url,
    daemon,
    config,
    async createSilence(matchers, durationMs, comment = "lifeboat test") {
      const list: SilenceMatcher[] = Array.isArray(matchers)
        ? matchers
        : Object.entries(matchers).map(([name, value]) => ({ name, value }));
      const now = Date.now();
      const answer = await jsonRequest<{ silenceID: string }>("POST", `${api}/silences`, {
        matchers: list.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex ?? false, isEqual: m.isEqual ?? true })),
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + durationMs).toISOString(),
        createdBy: "lifeboat-tests",
        comment,
      });
      return answer.silenceID;
    },
    async expireSilence(id) {
      await jsonRequest<unknown>("DELETE", `${api}/silence/${encodeURIComponent(id)}`);
    },
    silences: () => jsonRequest<GettableSilence[]>("GET", `${api}/silences`),
    alerts(filter = {}) {
      const query = Object.entries(filter)
        .map(([name, value]) => `filter=${encodeURIComponent(`${name}=${JSON.stringify(value)}`)}`)
        .join("&");
      return jsonRequest<GettableAlert[]>("GET", `${api}/alerts${query === "" ? "" : `?${query}`}`);
    },
    async postAlerts(alerts) {
      await jsonRequest<unknown>("POST", `${api}/alerts`, alerts);
    },
    stop: () => daemon.stop(),
  };
}

interface RouteNode {
  receiver?: string;
  routes?: RouteNode[];
  [key: string]: unknown;
}

interface ReceiverNode {
  name: string;
  [key: string]: unknown;
}

/** The shipped configuration with the test's webhook, timers and no other integrations. */
export function testConfig(
  text: string,
  opts: Pick<StartAlertmanagerOptions, "webhookUrl" | "groupWait" | "groupInterval" | "repeatInterval">,
  tokenFile: string | undefined,
): string {
  const doc = parse(text) as { route?: RouteNode; receivers?: ReceiverNode[] };
  const receivers = doc.receivers ?? [];
  if (!receivers.some((r) => r.name === LIFEBOAT_RECEIVER)) {
    throw new Error(`the Alertmanager configuration has no receiver named "${LIFEBOAT_RECEIVER}"`);
  }
  doc.receivers = receivers.map((r) =>
    r.name === LIFEBOAT_RECEIVER
      ? {
          name: r.name,
          webhook_configs: [
            {
              url: opts.webhookUrl,
              send_resolved: true,
              ...(tokenFile === undefined
                ? {}
                : { http_config: { authorization: { type: "Bearer", credentials_file: tokenFile } } }),
            },
          ],
        }
      : { name: r.name },
  );
  let lifeboatRoutes = 0;
  const visit = (route: RouteNode): void => {
    if (route.receiver === LIFEBOAT_RECEIVER) {
      lifeboatRoutes++;
      route.group_wait = opts.groupWait ?? "1s";
      route.group_interval = opts.groupInterval ?? "1s";
      route.repeat_interval = opts.repeatInterval ?? "1h";
    }
    for (const child of route.routes ?? []) visit(child);
  };
  if (doc.route !== undefined) visit(doc.route);
  if (lifeboatRoutes === 0) throw new Error(`no route of the Alertmanager configuration sends to "${LIFEBOAT_RECEIVER}"`);
  return stringify(doc);
}
