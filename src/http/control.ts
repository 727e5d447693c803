import express, { type Request, type Response, type Router } from "express";
import { z } from "zod";
import type { OperatorCommands } from "../engine/commands.js";
import { ConflictError, NotFoundError, RefusedError } from "../domain/errors.js";
import { RECOVERY_STATES, type PauseState, type RecoveryState } from "../domain/model.js";
import { recoveryDetail, type Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { StormStatus } from "../domain/model.js";
import { requireAuth } from "./auth.js";

export interface StatusInfo {
  version: string;
  instance: string;
  leader: { self: boolean; id: string | null };
  store: string;
  dryRun: boolean;
  /** The storm guard: tripped or not, since when, which hosts it holds. */
  storm: StormStatus;
}

export interface ControlDeps {
  /** The journal, for reads. */
  store: Store;
  /** Every change an operator asks for goes through these. */
  commands: OperatorCommands;
  adminToken: Secret;
  status: () => Promise<StatusInfo>;
}

const listQuery = z.strictObject({
  host: z.string().optional(),
  state: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(",") : undefined))
    .pipe(z.array(z.enum(RECOVERY_STATES)).optional()),
  open: z.enum(["true", "false"]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const recoverBody = z.strictObject({
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, "expected a host name"),
  dry_run: z.boolean().default(false),
  confirm_off: z.boolean().default(false),
});
const approveBody = z
  .strictObject({
    ids: z.array(z.string().regex(/^[\w.-]{1,100}$/, "expected a recovery id")).min(1).max(1000).optional(),
    blocked_by: z.string().regex(/^[a-z][a-z0-9-]{0,49}$/, "expected a gate name, e.g. storm").optional(),
    zone: z.string().min(1).max(255).optional(),
  })
  .refine((b) => b.ids !== undefined || b.blocked_by !== undefined || b.zone !== undefined, { message: "name recoveries (ids) or a selector (blocked_by, zone)", path: ["ids"] });
/** An operator's reason (pause, cancel): the console checks it with the same rule. */
export const reasonBody = z.strictObject({ reason: z.string().max(1000).optional() });

export interface StatusSnapshot extends StatusInfo {
  paused: PauseState;
  openRecoveries: Partial<Record<RecoveryState, number>>;
}

/** `GET /api/v1/status`: who leads, pause, open recoveries by state (the console shows the same). */
export async function statusSnapshot(deps: Pick<ControlDeps, "store" | "commands" | "status">): Promise<StatusSnapshot> {
  const [status, pause, open] = await Promise.all([deps.status(), deps.commands.pauseState(), deps.store.listRecoveries({ open: true })]);
  const byState: Partial<Record<RecoveryState, number>> = {};
  for (const r of open) byState[r.state] = (byState[r.state] ?? 0) + 1;
  return { ...status, paused: pause, openRecoveries: byState };
}

/** The operator's API: read recoveries, approve, cancel, recover, pause, resume. */
export function controlRouter(deps: ControlDeps): Router {
  const router = express.Router();
  router.use("/api/v1", requireAuth({ bearer: deps.adminToken }, "lifeboat admin"), express.json({ limit: 64 * 1024 }));

  router.get("/api/v1/status", async (_req, res) => {
    res.json(await statusSnapshot(deps));
  });

  router.get("/api/v1/recoveries", async (req, res) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(res, q.error);
    const rows = await deps.store.listRecoveries({
      ...(q.data.host ? { host: q.data.host } : {}),
      ...(q.data.state ? { state: q.data.state } : {}),
      ...(q.data.open ? { open: q.data.open === "true" } : {}),
      limit: q.data.limit,
    });
    res.json({ recoveries: rows });
  });

  router.get("/api/v1/recoveries/:id", async (req, res) => {
    const detail = await recoveryDetail(deps.store, req.params.id);
    if (!detail) {
      res.status(404).json({ error: `no recovery ${req.params.id}` });
      return;
    }
    const events = await deps.store.listEvents({ recoveryId: detail.id, limit: 200 });
    res.json({ ...detail, events });
  });

  router.post("/api/v1/recoveries/:id/approve", (req, res) => act(res, () => deps.commands.approve(req.params.id, actor(req))));
  router.post("/api/v1/approve", (req, res) => {
    const b = approveBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(res, b.error);
    const { ids, blocked_by: blockedBy, zone } = b.data;
    return act(res, () => deps.commands.approveMany({ ...(ids ? { ids } : {}), ...(blockedBy ? { blockedBy } : {}), ...(zone ? { zone } : {}) }, actor(req)));
  });
  router.post("/api/v1/recoveries/:id/cancel", (req, res) => {
    const b = reasonBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(res, b.error);
    return act(res, () => deps.commands.cancel(req.params.id, actor(req), b.data.reason));
  });
  router.post("/api/v1/recover", (req, res) => {
    const b = recoverBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(res, b.error);
    return act(res, () => deps.commands.recover(b.data.host, { dryRun: b.data.dry_run, confirmOff: b.data.confirm_off, actor: actor(req) }), 201);
  });
  router.post("/api/v1/pause", (req, res) => {
    const b = reasonBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(res, b.error);
    return act(res, () => deps.commands.pause(actor(req), b.data.reason ?? "paused by operator"));
  });
  router.post("/api/v1/resume", (req, res) => act(res, () => deps.commands.resume(actor(req))));
  router.get("/api/v1/hosts/:host", (req, res) => act(res, () => deps.commands.describeHost(req.params.host)));
  router.post("/api/v1/hosts/:host/release", (req, res) => act(res, () => deps.commands.release(req.params.host, actor(req)), 202));
  router.post("/api/v1/hosts/:host/fence", async (req, res) => {
    const b = z.strictObject({ confirm: z.literal(true, { error: "confirm: true is required (this powers the host off)" }) }).safeParse(req.body ?? {});
    if (!b.success) return badRequest(res, b.error);
    await act(res, async () => ({ recovery: (await deps.commands.fenceOff(req.params.host, actor(req))).id }), 201);
  });
  return router;
}

/** Who asked: the `X-Lifeboat-Actor` header (the CLI sends user@host), else "api". */
export function actor(req: Request): string {
  const h = req.headers["x-lifeboat-actor"];
  const v = Array.isArray(h) ? h[0] : h;
  return v && /^[\w.@:-]{1,100}$/.test(v) ? v : "api";
}

export async function act(res: Response, fn: () => Promise<unknown>, okStatus = 200): Promise<void> {
  const out = await actionOutcome(fn, okStatus);
  res.status(out.status).json(out.ok ? out.value : { error: out.error });
}

export type ActionOutcome<T> = { ok: true; status: number; value: T } | { ok: false; status: number; error: string };

/** Run an operator action with the API's answer: its refusals (404, 409, 400) as they are, anything else 500. */
export async function actionOutcome<T>(fn: () => Promise<T>, okStatus = 200): Promise<ActionOutcome<T>> {
  try {
    return { ok: true, status: okStatus, value: await fn() };
  } catch (err) {
    const status = err instanceof NotFoundError ? 404 : err instanceof ConflictError ? 409 : err instanceof RefusedError ? 400 : 0;
    if (status) return { ok: false, status, error: errorMessage(err) };
    return { ok: false, status: 500, error: errorMessage(err) };
  }
}

function badRequest(res: Response, error: z.ZodError): void {
  res.status(400).json({
    error: error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; "),
  });
}
