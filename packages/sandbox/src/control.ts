import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import type { ActiveFault, FaultSpec, SandboxFaults } from "./cloud-faults.js";
import type { SimRequest } from "./cloud-state.js";
import type { EvacuationWatchView } from "./evacuation-watch.js";

/**
 * The site's control API (`lifeboat sandbox`'s control port): fail and repair hosts, read
 * where everything is, inject faults into the simulated cloud and read its request log — so
 * an operator can rehearse a config against a slow or failing cloud, as the tests do.
 *
 *   POST /hosts/:host/fail | /repair     GET /state
 *   GET /racks    POST /racks/:rack/fail  (every host of the rack off at once)
 *   GET /evacuations   POST /evacuations/reset  (in flight now and at most, evacuate calls per server)
 *   POST /faults {kind, ms?, status?, retry_after?, times?, match: {service?, method?, path?, action?, query?}}  → 201 {id}
 *   GET /faults    DELETE /faults/:id    DELETE /faults
 *   GET /requests?since=SEQ              → {requests, counts, last}
 */
export interface ControlSite<View> {
  hosts: string[];
  fail(host: string): void;
  repair(host: string): void;
  racks: ReadonlyMap<string, readonly string[]>;
  failRack(rack: string): string[];
  evacuations: { view(): EvacuationWatchView; reset(): void };
  view(): View;
  faults: SandboxFaults;
  requests: readonly SimRequest[];
}

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

const SERVICES = ["compute", "identity", "placement"] as const;

/** The body of `POST /faults`: the simulator's own fault shape, with `match.path` a regex source. */
export const faultBodySchema = z
  .strictObject({
    kind: z.enum(["latency", "status", "hang", "reset", "unauthorized"]),
    ms: z.number().int().min(0).max(3_600_000).optional(),
    status: z.number().int().min(400).max(599).optional(),
    /** Retry-After of a status fault: delay-seconds, or an HTTP-date. */
    retry_after: z.union([z.number().int().min(0), z.string().min(1).max(64)]).optional(),
    times: z.number().int().min(1).optional(),
    match: z.strictObject({
      service: z.enum(SERVICES).optional(),
      method: z.string().regex(/^[A-Za-z]+$/, "an HTTP method such as POST").optional(),
      path: z
        .string()
        .min(1)
        .refine((p) => compiles(p), "not a valid regular expression")
        .optional(),
      /** A request whose JSON body has this key: a server action ("evacuate"), a service update ("forced_down"). */
      action: z.string().min(1).optional(),
      /** Query parameters the request must carry with exactly these values. */
      query: z.record(z.string(), z.string()).optional(),
    }),
  })
  .superRefine((b, ctx) => {
    if (b.kind === "latency" && b.ms === undefined) ctx.addIssue({ code: "custom", path: ["ms"], message: "required for a latency fault" });
    if (b.kind !== "latency" && b.ms !== undefined) ctx.addIssue({ code: "custom", path: ["ms"], message: "only for a latency fault" });
    if (b.kind !== "status" && b.status !== undefined) ctx.addIssue({ code: "custom", path: ["status"], message: "only for a status fault" });
    if (b.kind !== "status" && b.retry_after !== undefined) ctx.addIssue({ code: "custom", path: ["retry_after"], message: "only for a status fault" });
  });
export type FaultBody = z.infer<typeof faultBodySchema>;

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** A fault body as the simulator's spec; an `unauthorized` fault hits once unless told otherwise, as in-process. */
export function faultSpecOf(b: FaultBody): FaultSpec {
  const spec: FaultSpec = { kind: b.kind, match: {} };
  if (b.match.service) spec.match!.service = b.match.service;
  if (b.match.method) spec.match!.method = b.match.method.toUpperCase();
  if (b.match.path !== undefined) spec.match!.path = new RegExp(b.match.path);
  if (b.match.action !== undefined) spec.match!.action = b.match.action;
  if (b.match.query !== undefined) spec.match!.query = b.match.query;
  if (b.ms !== undefined) spec.ms = b.ms;
  if (b.status !== undefined) spec.status = b.status;
  if (b.retry_after !== undefined) spec.retryAfter = b.retry_after;
  const times = b.times ?? (b.kind === "unauthorized" ? 1 : undefined);
  if (times !== undefined) spec.times = times;
  return spec;
}

/** `pathSource`: the regex source as the operator wrote it (RegExp.source escapes slashes). */
function faultView(f: ActiveFault, pathSource?: string): Record<string, unknown> {
  const p = f.match?.path;
  return {
    id: f.id,
    kind: f.kind,
    ...(f.ms !== undefined ? { ms: f.ms } : {}),
    ...(f.kind === "status" ? { status: f.status ?? 500 } : {}),
    ...(f.retryAfter !== undefined ? { retry_after: f.retryAfter } : {}),
    match: {
      ...(f.match?.service ? { service: f.match.service } : {}),
      ...(f.match?.method ? { method: f.match.method } : {}),
      ...(p !== undefined ? { path: pathSource ?? (typeof p === "string" ? p : p.source) } : {}),
      ...(f.match?.action !== undefined ? { action: f.match.action } : {}),
      ...(f.match?.query !== undefined ? { query: f.match.query } : {}),
    },
    hits: f.hits,
    // null: until the fault is removed.
    remaining: Number.isFinite(f.remaining) ? f.remaining : null,
  };
}

/** One request of the log as the API shows it: no bodies, no headers (they carry passwords and tokens). */
function requestView(q: SimRequest): Record<string, unknown> {
  const action = q.method === "POST" && /^\/v2\.1\/servers\/[^/]+\/action$/.test(q.path) && typeof q.body === "object" && q.body !== null ? Object.keys(q.body)[0] : undefined;
  return {
    seq: q.seq,
    time: q.at,
    service: q.service,
    method: q.method,
    path: q.path,
    ...(action ? { action } : {}),
    ...(q.status !== undefined ? { status: q.status } : {}),
    ...(q.fault ? { fault: q.fault } : {}),
    ...(q.clientClosed ? { client_closed: true } : {}),
  };
}

function evacuationsView(v: EvacuationWatchView): Record<string, unknown> {
  return {
    since: v.since,
    in_flight: v.inFlight,
    max_in_flight: v.maxInFlight,
    max_at: v.maxAt,
    posts: v.posts,
    accepted: v.accepted,
    servers: v.servers,
  };
}

/** `issue.path` as the field name an operator wrote: `match.path`, `kind`, or `body` for the whole. */
function fieldOf(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join(".") : "body";
}

export async function startControl<View>(host: string, port: number, site: ControlSite<View>): Promise<ControlServer> {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "64kb", strict: false }));
  const pathSources = new Map<number, string>();

  app.get("/state", (_req, res) => {
    res.json(site.view());
  });
  app.post("/hosts/:host/:action", (req, res) => {
    const h = req.params.host;
    if (!site.hosts.includes(h)) {
      res.status(404).json({ error: `no host ${h}` });
      return;
    }
    if (req.params.action === "fail") site.fail(h);
    else if (req.params.action === "repair") site.repair(h);
    else {
      res.status(404).json({ error: "actions: fail, repair" });
      return;
    }
    res.json({ host: h, action: req.params.action });
  });

  app.get("/racks", (_req, res) => {
    res.json({ racks: Object.fromEntries(site.racks) });
  });
  app.post("/racks/:rack/:action", (req, res) => {
    const rack = req.params.rack;
    if (!site.racks.has(rack)) {
      res.status(404).json({ error: `no rack ${rack}` });
      return;
    }
    if (req.params.action !== "fail") {
      res.status(404).json({ error: "actions: fail (repair the hosts one by one: POST /hosts/<host>/repair)" });
      return;
    }
    res.json({ rack, action: "fail", hosts: site.failRack(rack) });
  });

  app.get("/evacuations", (_req, res) => {
    res.json(evacuationsView(site.evacuations.view()));
  });
  app.post("/evacuations/reset", (_req, res) => {
    site.evacuations.reset();
    res.json(evacuationsView(site.evacuations.view()));
  });

  app.post("/faults", (req, res) => {
    if (!req.is("application/json")) {
      res.status(415).json({ error: "body: must be application/json" });
      return;
    }
    const parsed = faultBodySchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: parsed.error.issues.map((i) => `${fieldOf(i.path)}: ${i.message}`).join("; ") });
      return;
    }
    const handle = site.faults.inject(faultSpecOf(parsed.data));
    if (parsed.data.match.path !== undefined) pathSources.set(handle.id, parsed.data.match.path);
    res.status(201).json({ id: handle.id });
  });
  app.get("/faults", (_req, res) => {
    res.json({ faults: site.faults.list().map((f) => faultView(f, pathSources.get(f.id))) });
  });
  app.delete("/faults", (_req, res) => {
    res.json({ removed: site.faults.clear() });
  });
  app.delete("/faults/:id", (req, res) => {
    const id = /^\d+$/.test(req.params.id) ? Number(req.params.id) : NaN;
    if (!site.faults.remove(id)) {
      res.status(404).json({ error: `no fault ${req.params.id} (removed, used up, or never injected)` });
      return;
    }
    res.status(204).end();
  });

  // `since` is a sequence number (each request's `seq`), not a time: two requests can share a
  // millisecond, and a reader that passes back the `last` it saw misses nothing and sees nothing twice.
  app.get("/requests", (req, res) => {
    const raw = req.query.since;
    let since = 0;
    if (raw !== undefined) {
      if (typeof raw !== "string" || !/^\d+$/.test(raw)) {
        res.status(400).json({ error: "since: a request sequence number (the `seq` of the last request seen)" });
        return;
      }
      since = Number(raw);
    }
    const log = site.requests;
    const picked = log.filter((q) => q.seq > since);
    const counts: Record<string, number> = { compute: 0, identity: 0, placement: 0, other: 0 };
    for (const q of picked) counts[q.service] = (counts[q.service] ?? 0) + 1;
    res.json({ requests: picked.map(requestView), counts, last: log.at(-1)?.seq ?? 0 });
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({
      error: "not found: POST /hosts/<host>/fail|repair, GET /racks, POST /racks/<rack>/fail, GET /state, GET /evacuations, POST /evacuations/reset, GET|POST|DELETE /faults, DELETE /faults/<id>, GET /requests",
    });
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const type = (err as { type?: string }).type;
    if (type === "entity.parse.failed") res.status(400).json({ error: "body: malformed JSON" });
    else if (type === "entity.too.large") res.status(413).json({ error: "body: too large" });
    else res.status(500).json({ error: "internal error" });
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once("error", reject);
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === "IPv6" ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
