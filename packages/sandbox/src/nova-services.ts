import type { Request, Response, Router } from "express";
import { naiveMicro, naiveSeconds, type SandboxState, type SimControlService, type SimHost } from "./cloud-state.js";
import { isTrueish, isUuidLike, mvAtLeast, novaError, queryParam, requireAdmin, sendJson, validateBody, type JsonSchema } from "./nova-common.js";

/**
 * os-services of the simulated Nova: integer ids before 2.53 and UUIDs from it, forced_down
 * from 2.11, the ≥2.53 `PUT /os-services/{uuid}` and the older action URLs, and the traps a
 * real Nova sets: disabling a service it still believes up waits for an RPC timeout, and
 * un-forcing is refused while `done` evacuation migrations remain.
 */

const UPDATE_V21: JsonSchema = {
  type: "object",
  properties: {
    host: { type: "string", minLength: 1, maxLength: 255 },
    binary: { type: "string", minLength: 1, maxLength: 255 },
    disabled_reason: { type: "string", minLength: 1, maxLength: 255 },
  },
  required: ["host", "binary"],
  additionalProperties: false,
};
const UPDATE_V211: JsonSchema = {
  type: "object",
  properties: {
    host: { type: "string", minLength: 1, maxLength: 255 },
    binary: { type: "string", minLength: 1, maxLength: 255 },
    disabled_reason: { type: "string", minLength: 1, maxLength: 255 },
    forced_down: { type: "boolean-like" },
  },
  required: ["host", "binary"],
  additionalProperties: false,
};
const UPDATE_V253: JsonSchema = {
  type: "object",
  properties: {
    status: { type: "string", enum: ["enabled", "disabled"] },
    disabled_reason: { type: "string", minLength: 1, maxLength: 255 },
    forced_down: { type: "boolean-like" },
  },
  additionalProperties: false,
};

function computeView(state: SandboxState, h: SimHost, res: Response, fresh = false): Record<string, unknown> {
  const v: Record<string, unknown> = {
    binary: "nova-compute",
    host: h.name,
    id: mvAtLeast(res, "2.53") ? h.serviceUuid : h.serviceId,
    zone: h.zone,
    status: h.disabled ? "disabled" : "enabled",
    state: state.serviceIsUp(h) ? "up" : "down",
    updated_at: fresh ? naiveMicro(h.updatedAtMs) : naiveSeconds(h.updatedAtMs),
    disabled_reason: h.disabledReason,
  };
  if (mvAtLeast(res, "2.11")) v.forced_down = h.forcedDown;
  return v;
}

function controlView(state: SandboxState, s: SimControlService, res: Response): Record<string, unknown> {
  const v: Record<string, unknown> = {
    binary: s.binary,
    host: s.host,
    id: mvAtLeast(res, "2.53") ? s.uuid : s.id,
    zone: "internal",
    status: "enabled",
    state: "up",
    updated_at: naiveSeconds(state.clock.now() - (state.clock.now() % state.opts.reportIntervalMs)),
    disabled_reason: null,
  };
  if (mvAtLeast(res, "2.11")) v.forced_down = false;
  return v;
}

function doneEvacuationsFrom(state: SandboxState, host: string): boolean {
  return state.migrations.some((m) => m.sourceCompute === host && m.status === "done" && m.migrationType === "evacuation");
}

function unforceRefused(res: Response, host: string): void {
  novaError(
    res,
    400,
    `Unable to force up host ${host} as \`done\` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to \`completed\` before retrying this request.`,
  );
}

export function mountServices(router: Router, state: SandboxState): void {
  router.get("/os-services", (req: Request, res: Response) => {
    if (!requireAdmin(res, "os_compute_api:os-services:list")) return;
    const host = queryParam(req, "host");
    const binary = queryParam(req, "binary");
    const list: Record<string, unknown>[] = [];
    for (const s of state.controlServices) {
      if ((!host || s.host === host) && (!binary || s.binary === binary)) list.push(controlView(state, s, res));
    }
    for (const h of state.hosts.values()) {
      if ((!host || h.name === host) && (!binary || binary === "nova-compute")) list.push(computeView(state, h, res));
    }
    sendJson(res, 200, { services: list });
  });

  router.put("/os-services/:id", async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const body: unknown = req.body;
    if (mvAtLeast(res, "2.53")) {
      const err = validateBody(body, UPDATE_V253);
      if (err) return novaError(res, 400, err);
      if (!isUuidLike(id)) return novaError(res, 400, `Invalid uuid ${id}`);
      if (!requireAdmin(res, "os_compute_api:os-services:update")) return;
      const h = state.hostByServiceUuid(id);
      if (!h) {
        if (state.controlServices.some((s) => s.uuid === id)) {
          const s = state.controlServices.find((x) => x.uuid === id)!;
          return novaError(res, 400, `Updating a ${s.binary} service is not supported. Only nova-compute services can be updated.`);
        }
        return novaError(res, 404, `Service ${id} could not be found.`);
      }
      const b = body as { status?: string; disabled_reason?: string; forced_down?: unknown };
      if (b.status === undefined && b.forced_down === undefined) {
        return novaError(res, 400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.");
      }
      if (b.status === "enabled" && b.disabled_reason) {
        return novaError(res, 400, "Specifying 'disabled_reason' with status 'enabled' is invalid.");
      }
      if (b.forced_down !== undefined && !isTrueish(b.forced_down) && doneEvacuationsFrom(state, h.name)) {
        return unforceRefused(res, h.name);
      }
      // nova-api saves first, then (when `disabled` changed) calls the compute over RPC to
      // update its COMPUTE_STATUS_DISABLED trait; a host it believes up but is dead makes that
      // call wait for rpc_response_timeout before the 200.
      const disabledChanged = b.status !== undefined && (b.status === "disabled") !== h.disabled;
      if (b.status === "enabled") {
        h.disabled = false;
        h.disabledReason = null;
      } else if (b.status === "disabled") {
        h.disabled = true;
        h.disabledReason = b.disabled_reason ?? null;
      }
      if (b.forced_down !== undefined) h.forcedDown = isTrueish(b.forced_down);
      h.updatedAtMs = state.clock.now();
      const view = computeView(state, h, res, true);
      if (disabledChanged && state.serviceIsUp(h) && !h.alive && state.opts.disableWhileUpDelayMs > 0) {
        await new Promise((r) => setTimeout(r, state.opts.disableWhileUpDelayMs));
      }
      sendJson(res, 200, { service: view });
      return;
    }
    // Before 2.53: the id is an action name and the body names host and binary.
    const err = validateBody(body, mvAtLeast(res, "2.11") ? UPDATE_V211 : UPDATE_V21);
    if (err) return novaError(res, 400, err);
    if (!requireAdmin(res, "os_compute_api:os-services:update")) return;
    const b = body as { host: string; binary: string; disabled_reason?: string; forced_down?: unknown };
    const actions = ["enable", "disable", "disable-log-reason", ...(mvAtLeast(res, "2.11") ? ["force-down"] : [])];
    if (!actions.includes(id)) return novaError(res, 404, "Unknown action");
    if (id === "disable-log-reason" && b.disabled_reason === undefined) return novaError(res, 400, "Missing disabled reason field");
    if (id === "force-down" && b.forced_down === undefined) return novaError(res, 400, "Missing forced_down field");
    if (b.binary !== "nova-compute") {
      return novaError(res, 400, `Updating a ${b.binary} service is not supported. Only nova-compute services can be updated.`);
    }
    const h = state.hosts.get(b.host);
    if (!h) return novaError(res, 404, `Could not find binary ${b.binary} on host ${b.host}.`);
    h.updatedAtMs = state.clock.now();
    if (id === "force-down") {
      const forced = isTrueish(b.forced_down);
      if (!forced && doneEvacuationsFrom(state, h.name)) return unforceRefused(res, h.name);
      h.forcedDown = forced;
      sendJson(res, 200, { service: { host: h.name, binary: b.binary, forced_down: forced } });
      return;
    }
    const disable = id !== "enable";
    const changed = disable !== h.disabled;
    h.disabled = disable;
    h.disabledReason = id === "disable-log-reason" ? (b.disabled_reason ?? null) : null;
    const out: Record<string, unknown> = { host: h.name, binary: b.binary, status: disable ? "disabled" : "enabled" };
    if (h.disabledReason) out.disabled_reason = h.disabledReason;
    if (changed && state.serviceIsUp(h) && !h.alive && state.opts.disableWhileUpDelayMs > 0) {
      await new Promise((r) => setTimeout(r, state.opts.disableWhileUpDelayMs));
    }
    sendJson(res, 200, { service: out });
  });

  router.delete("/os-services/:id", (_req: Request, res: Response) => {
    if (!requireAdmin(res, "os_compute_api:os-services:delete")) return;
    novaError(res, 501, "Deleting services is not simulated.");
  });
}
