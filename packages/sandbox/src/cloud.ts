import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { SandboxFaults } from "./cloud-faults.js";
import { defaultScenario, SANDBOX_ADMIN, SANDBOX_APP_CREDENTIAL, type GeneratedScenarioOptions, type SandboxScenario } from "./cloud-scenario.js";
import { SandboxState, type SandboxClock, type SimRequest } from "./cloud-state.js";
import { createKeystoneRouter, keystoneErrorBody, type CatalogService } from "./keystone.js";
import { createNovaRouter } from "./nova.js";
import { newRequestId, novaError, sendJson } from "./nova-common.js";
import { createPlacementRouter } from "./placement.js";

/**
 * A simulated OpenStack cloud — Keystone, Nova and Placement in one real HTTP server on
 * loopback — faithful to the API reference and to the answers captured from a real Zed
 * cloud (test/fixtures/openstack). lifeboat's tests and `lifeboat sandbox` use it.
 *
 * Endpoints: Keystone `/identity/v3`, Nova `/compute/v2.1`, Placement `/placement`. The
 * catalog lists public, internal and admin endpoints per region; all but the first region's
 * public ones live under `/_/<region>/<interface>/…` so a test can tell which was used
 * (the request log records `region` and `interface`).
 */
export interface SandboxCloudOptions {
  /** Listen address (default 127.0.0.1) and port (default 0: chosen by the OS). */
  host?: string;
  port?: number;
  /** The cloud's content; default: `defaultScenario(generate)`. */
  scenario?: SandboxScenario;
  /** Shape of the default scenario when `scenario` is not given (hosts, servers per host). */
  generate?: GeneratedScenarioOptions;
  /** Catalog regions (default ["RegionOne"]). */
  regions?: string[];
  /** Highest Nova microversion (default "2.93", Zed). */
  maxMicroversion?: string;
  minMicroversion?: string;
  /** Highest Placement microversion (default "1.39"). */
  placementMaxMicroversion?: string;
  /** Token lifetime (default 3600). */
  tokenLifetimeSeconds?: number;
  /** Nova's service_down_time (default 60). */
  serviceDownTimeSeconds?: number;
  /** nova-compute's report_interval (default 10). */
  reportIntervalSeconds?: number;
  /** How long disabling a service Nova still believes up takes (rpc_response_timeout, default 60000). */
  disableWhileUpDelayMs?: number;
  /** Rebuild time of one evacuation (default 3000). */
  evacuationDurationMs?: number;
  /** Nova's [api]max_limit (default 1000). */
  maxLimit?: number;
  /**
   * The cloud's clock (every service's: Nova's records, its `Date` headers, Keystone's token
   * times) this far ahead of this machine's, seconds; negative: behind. Default 0.
   */
  clockOffsetSeconds?: number;
  /**
   * Send a `Date` header on every answer, from the cloud's clock, as nova-api's WSGI server
   * (eventlet, or Apache in front of uWSGI) does: IMF-fixdate, whole seconds, written when the
   * answer is sent. false: none, as behind a proxy that drops it. Default true.
   */
  dateHeader?: boolean;
  /**
   * The clock that writes the `Date` header this far off the cloud's, seconds (negative:
   * behind), as a proxy in front of nova-api that writes its own Date (nginx does) on a host
   * whose clock is off: the Date then disagrees with the records' stamps. Default 0.
   */
  dateClockOffsetSeconds?: number;
  /** Serve HTTPS with this key and certificate (PEM) instead of plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface SandboxCredentials {
  auth_url: string;
  username: string;
  password: string;
  user_domain_name: string;
  project_name: string;
  project_domain_name: string;
}

export interface SandboxCloud {
  /** Keystone auth URL (`…/identity/v3`). */
  readonly url: string;
  readonly baseUrl: string;
  readonly port: number;
  readonly region: string;
  /** Public endpoints of the first region. */
  readonly endpoints: { identity: string; compute: string; placement: string };
  /** Admin credentials as plain data (for lifeboat's `openstack.auth` or a clouds.yaml). */
  readonly admin: SandboxCredentials;
  /** An application credential of the admin user, when the scenario has one named "lifeboat". */
  readonly applicationCredential?: { id: string; name: string; secret: string };
  /** Direct access for tests: hosts, services, servers, migrations, tokens, request log. */
  readonly state: SandboxState;
  readonly faults: SandboxFaults;
  readonly clock: SandboxClock;
  /** Every request in arrival order (alias of state.requests). */
  readonly requests: SimRequest[];
  /** Apply what time has made happen (heartbeats, evacuation progress) before reading `state`. */
  settle(): void;
  /** The host dies: nova-compute stops heartbeating. */
  killHost(name: string): void;
  /** The repaired host's nova-compute starts: heartbeats again, `done` evacuations → `completed`. */
  startCompute(name: string): void;
  close(): Promise<void>;
}

export { defaultScenario, SANDBOX_ADMIN, SANDBOX_APP_CREDENTIAL } from "./cloud-scenario.js";
export type { GeneratedScenarioOptions, SandboxScenario, ScenarioHost, ScenarioServer, ScenarioUser } from "./cloud-scenario.js";
export type { FaultSpec, FaultMatch, FaultHandle } from "./cloud-faults.js";

const SERVICE_PATHS = { identity: "identity/v3/", compute: "compute/v2.1", placement: "placement" } as const;
const INTERFACES = ["public", "internal", "admin"] as const;

export async function startSandboxCloud(opts: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  const regions = opts.regions && opts.regions.length > 0 ? opts.regions : ["RegionOne"];
  const scenario = opts.scenario ?? defaultScenario(opts.generate);
  const state = new SandboxState(scenario, {
    region: regions[0]!,
    minMicroversion: opts.minMicroversion ?? "2.1",
    maxMicroversion: opts.maxMicroversion ?? "2.93",
    placementMaxMicroversion: opts.placementMaxMicroversion ?? "1.39",
    tokenLifetimeMs: (opts.tokenLifetimeSeconds ?? 3600) * 1000,
    serviceDownTimeMs: (opts.serviceDownTimeSeconds ?? 60) * 1000,
    reportIntervalMs: Math.max(1, Math.round((opts.reportIntervalSeconds ?? 10) * 1000)),
    disableWhileUpDelayMs: opts.disableWhileUpDelayMs ?? 60_000,
    evacuationDurationMs: opts.evacuationDurationMs ?? 3000,
    maxLimit: opts.maxLimit ?? 1000,
    clockOffsetMs: Math.round((opts.clockOffsetSeconds ?? 0) * 1000),
  });
  const faults = new SandboxFaults();

  const serviceIds = { identity: randomUUID().replace(/-/g, ""), compute: randomUUID().replace(/-/g, ""), placement: randomUUID().replace(/-/g, "") };
  const endpointIds = new Map<string, string>();
  const catalog = (origin: string): CatalogService[] =>
    (["identity", "compute", "placement"] as const).map((type) => ({
      type,
      name: type === "identity" ? "keystone" : type === "compute" ? "nova" : "placement",
      id: serviceIds[type],
      endpoints: regions.flatMap((region, ri) =>
        INTERFACES.map((iface) => {
          const key = `${type}/${region}/${iface}`;
          if (!endpointIds.has(key)) endpointIds.set(key, randomUUID().replace(/-/g, ""));
          const prefix = ri === 0 && iface === "public" ? "" : `/_/${encodeURIComponent(region)}/${iface}`;
          return { id: endpointIds.get(key)!, interface: iface, region_id: region, url: `${origin}${prefix}/${SERVICE_PATHS[type]}`, region };
        }),
      ),
    }));

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  let seq = 0;
  const dateClockOffsetMs = Math.round((opts.dateClockOffsetSeconds ?? 0) * 1000);

  // Request log, endpoint prefix, the clock's consequences and its Date header, before anything else.
  app.use((req: Request, res: Response, next: NextFunction) => {
    state.settle();
    dateFromCloudClock(res, state.clock, opts.dateHeader !== false, dateClockOffsetMs);
    let region = regions[0]!;
    let iface = "public";
    let prefix = "";
    const m = /^\/_\/([^/]+)\/(public|internal|admin)(\/.*)?$/.exec(req.url);
    if (m) {
      region = decodeURIComponent(m[1]!);
      iface = m[2]!;
      prefix = `/_/${m[1]}/${iface}`;
      req.url = m[3] ?? "/";
    }
    const pathOnly = req.url.split("?")[0]!;
    const svc = /^\/(identity|compute|placement)(\/.*)?$/.exec(pathOnly);
    const service = (svc?.[1] as SimRequest["service"] | undefined) ?? "other";
    const entry: SimRequest = {
      seq: ++seq,
      at: new Date(state.clock.now()).toISOString(),
      method: req.method,
      service,
      path: svc ? (svc[2] ?? "/") : pathOnly,
      query: Object.fromEntries(new URLSearchParams(req.url.includes("?") ? req.url.slice(req.url.indexOf("?") + 1) : "")),
      body: undefined,
      region,
      interface: iface,
    };
    const mvHeader = req.get("OpenStack-API-Version") ?? req.get("X-OpenStack-Nova-API-Version");
    if (mvHeader) entry.microversion = mvHeader;
    state.requests.push(entry);
    // "prefinish", not "finish": a request whose client went away is still carried out and
    // answered, as by nova-api, and the log keeps the status it was answered with.
    res.on("prefinish", () => {
      entry.status = res.statusCode;
    });
    res.on("close", () => {
      if (!res.writableEnded && entry.fault !== "reset") entry.clientClosed = true;
    });
    res.locals.prefix = prefix;
    res.locals.entry = entry;
    next();
  });

  app.use(express.json({ type: ["application/json", "application/*+json"], strict: false, limit: "1mb" }));
  app.use((req: Request, res: Response, next: NextFunction) => {
    (res.locals.entry as SimRequest).body = req.body as unknown;
    next();
  });

  // Injected faults (after the body is read, so the request log shows it).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const entry = res.locals.entry as SimRequest;
    const open =
      (entry.service === "identity" && (entry.path === "/v3/auth/tokens" && req.method === "POST")) ||
      ["/", "/v3", "/v3/", "/v2.1", "/v2.1/"].includes(entry.path);
    const { delayMs, terminal } = faults.take(entry, { tokenProtected: !open });
    const apply = (): void => {
      if (!terminal) return next();
      entry.fault = terminal.kind;
      switch (terminal.kind) {
        case "hang":
          return; // never answered; close() tears the socket down
        case "reset":
          req.socket.destroy();
          return;
        case "unauthorized":
          res.set("WWW-Authenticate", `Keystone uri="${req.protocol}://${req.get("host")}/identity"`);
          sendJson(res, 401, { error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
          return;
        case "status":
          if (terminal.retryAfter !== undefined) res.set("Retry-After", String(terminal.retryAfter));
          serviceError(res, entry, terminal.status ?? 500);
          return;
        default:
          return next();
      }
    };
    if (delayMs > 0) setTimeout(apply, delayMs);
    else apply();
  });

  app.use("/identity", createKeystoneRouter({ state, catalog }));
  app.use("/compute", createNovaRouter(state));
  app.use("/placement", createPlacementRouter(state));
  app.use((_req: Request, res: Response) => sendJson(res, 404, { error: { code: 404, message: "Not found", title: "Not Found" } }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const entry = res.locals.entry as SimRequest | undefined;
    const bad = err instanceof SyntaxError || (err as { type?: string }).type === "entity.parse.failed";
    if (bad && entry?.service === "compute") return novaError(res, 400, "Malformed request body");
    if (bad) return sendJson(res, 400, { error: { code: 400, message: "Malformed request body", title: "Bad Request" } });
    serviceError(res, entry ?? { service: "other", method: "GET", path: "/" }, 500);
  });

  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, app) : http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const baseUrl = `${opts.tls ? "https" : "http"}://${host}:${addr.port}`;
  const admin = [...state.users.values()].find((u) => u.name === SANDBOX_ADMIN.username);
  const adminProject = [...state.projects.values()].find((p) => p.name === SANDBOX_ADMIN.projectName);
  const appCred = [...state.applicationCredentials.values()].find((a) => a.name === SANDBOX_APP_CREDENTIAL.name);

  return {
    url: `${baseUrl}/identity/v3`,
    baseUrl,
    port: addr.port,
    region: regions[0]!,
    endpoints: { identity: `${baseUrl}/identity/v3/`, compute: `${baseUrl}/compute/v2.1`, placement: `${baseUrl}/placement` },
    admin: {
      auth_url: `${baseUrl}/identity/v3`,
      username: admin?.name ?? SANDBOX_ADMIN.username,
      password: admin?.password ?? SANDBOX_ADMIN.password,
      user_domain_name: "Default",
      project_name: adminProject?.name ?? SANDBOX_ADMIN.projectName,
      project_domain_name: "Default",
    },
    applicationCredential: appCred ? { id: appCred.id, name: appCred.name, secret: appCred.secret } : undefined,
    state,
    faults,
    clock: state.clock,
    requests: state.requests,
    settle: () => state.settle(),
    killHost: (name: string) => state.killHost(name),
    startCompute: (name: string) => state.startCompute(name),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The answer's `Date`, from the cloud's clock rather than the machine's (node's own would
 * ignore a clock offset or `advance()`), taken as the head is written — after the handler
 * read the records it answers with, as eventlet.wsgi does. Whole seconds, IMF-fixdate.
 * `offsetMs`: the Date written by a proxy whose clock is that far off the cloud's.
 */
function dateFromCloudClock(res: Response, clock: SandboxClock, send: boolean, offsetMs: number): void {
  res.sendDate = false;
  if (!send) return;
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
  res.writeHead = ((...args: unknown[]) => {
    if (!res.hasHeader("Date")) res.setHeader("Date", new Date(Math.floor((clock.now() + offsetMs) / 1000) * 1000).toUTCString());
    return writeHead(...args);
  }) as Response["writeHead"];
}

/** A 5xx (or other) answer worded like the service in question. */
function serviceError(res: Response, req: Pick<SimRequest, "service" | "method" | "path">, status: number): void {
  const { service } = req;
  if (service === "compute") {
    res.set("x-openstack-request-id", newRequestId());
    return novaError(
      res,
      status,
      status === 500
        ? "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'oslo_db.exception.DBConnectionError'>"
        : `Service unavailable (HTTP ${status})`,
    );
  }
  if (service === "placement") {
    return sendJson(res, status, { errors: [{ status, title: status === 503 ? "Service Unavailable" : "Internal Server Error", detail: "The server has either erred or is incapable of performing the requested operation.", request_id: newRequestId() }] });
  }
  sendJson(res, status, keystoneErrorBody(status, req));
}
