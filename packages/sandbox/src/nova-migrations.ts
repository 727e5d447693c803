import type { Request, Response, Router } from "express";
import { naiveSeconds, type SandboxState, type SimMigration } from "./cloud-state.js";
import { dateTimeParam, dbSeconds, locals, mvAtLeast, novaError, queryParam, requireAdmin, sendJson } from "./nova-common.js";

/**
 * os-migrations of the simulated Nova: filters instance_uuid, migration_type,
 * source_compute, status and host; `migration_type` shown from 2.23; from 2.59 `uuid`,
 * newest-first order, limit/marker paging with `migrations_links` and `changes-since`
 * (records whose `updated_at` is at or after it: one never updated since its creation, with
 * `updated_at` null, is not among them; below 2.59 the parameter is dropped unread);
 * user/project at 2.80.
 */

function view(m: SimMigration, res: Response): Record<string, unknown> {
  const v: Record<string, unknown> = {
    id: m.id,
    source_compute: m.sourceCompute,
    dest_compute: m.destCompute,
    source_node: m.sourceNode,
    dest_node: m.destNode,
    dest_host: m.destHost,
    old_instance_type_id: null,
    new_instance_type_id: null,
    instance_uuid: m.instanceUuid,
    status: m.status,
    created_at: naiveSeconds(m.createdMs),
    updated_at: m.updatedMs === null ? null : naiveSeconds(m.updatedMs),
  };
  if (mvAtLeast(res, "2.23")) v.migration_type = m.migrationType;
  if (mvAtLeast(res, "2.59")) v.uuid = m.uuid;
  if (mvAtLeast(res, "2.80")) {
    v.user_id = m.userId;
    v.project_id = m.projectId;
  }
  return v;
}

export function mountMigrations(router: Router, state: SandboxState): void {
  router.get("/os-migrations", (req: Request, res: Response) => {
    if (!requireAdmin(res, "os_compute_api:os-migrations:index")) return;
    const instance = queryParam(req, "instance_uuid");
    const type = queryParam(req, "migration_type");
    const source = queryParam(req, "source_compute");
    const status = queryParam(req, "status");
    const host = queryParam(req, "host");
    // 2.59's schema: a single date-time. Below, migrations.py deletes it from the filters.
    const changesSince = mvAtLeast(res, "2.59") ? dateTimeParam(req, res, "changes-since", { single: true }) : undefined;
    if (changesSince === null) return;
    let list = state.migrations.filter(
      (m) =>
        (!instance || m.instanceUuid === instance) &&
        (!type || m.migrationType === type) &&
        (!source || m.sourceCompute === source) &&
        (!status || m.status === status) &&
        (!host || m.sourceCompute === host || m.destCompute === host) &&
        (changesSince === undefined || (m.updatedMs !== null && dbSeconds(m.updatedMs) >= changesSince)),
    );
    if (!mvAtLeast(res, "2.59")) {
      // Before 2.59 no order is promised; the database hands them back by id.
      sendJson(res, 200, { migrations: list.sort((a, b) => a.id - b.id).map((m) => view(m, res)) });
      return;
    }
    list = list.sort((a, b) => b.createdMs - a.createdMs || b.id - a.id);
    const marker = queryParam(req, "marker");
    if (marker) {
      const i = list.findIndex((m) => m.uuid === marker);
      if (i < 0) return novaError(res, 400, `Marker ${marker} could not be found.`);
      list = list.slice(i + 1);
    }
    const rawLimit = queryParam(req, "limit");
    const limit = rawLimit === undefined ? undefined : Number(rawLimit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) return novaError(res, 400, "limit param must be an integer");
    const size = Math.min(limit ?? state.opts.maxLimit, state.opts.maxLimit);
    const page = list.slice(0, size);
    const body: Record<string, unknown> = { migrations: page.map((m) => view(m, res)) };
    if (limit !== undefined && page.length > 0 && page.length === size) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (k !== "marker") params.append(k, typeof v === "string" ? v : JSON.stringify(v));
      params.append("marker", page[page.length - 1]!.uuid);
      body.migrations_links = [{ rel: "next", href: `${locals(res).root}/v2.1/os-migrations?${params.toString()}` }];
    }
    sendJson(res, 200, body);
  });
}
