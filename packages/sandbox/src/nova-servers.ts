import { randomBytes } from "node:crypto";
import type { Request, Response, Router } from "express";
import { isoSeconds, naiveMicro, serverStatus, type SandboxState, type SimServer } from "./cloud-state.js";
import {
  cmpVersion,
  dateTimeParam,
  dbSeconds,
  isTrueish,
  locals,
  mvAtLeast,
  novaError,
  queryParam,
  requireAdmin,
  sendJson,
  validateBody,
  type JsonSchema,
} from "./nova-common.js";

/**
 * Servers of the simulated Nova: the detail view as each microversion shapes it, admin
 * listing with `all_tenants`/`host`/`locked` (2.73+), `changes-since` (servers whose
 * `updated_at` is at or after it, deleted ones included with status DELETED, as the API
 * guide's "Efficient polling" says) and `servers_links` paging, a server's metadata (all of
 * it, or one item, as the notifier reads a tenant's contact key), and the actions lifeboat
 * uses — lock/unlock (with a reason from 2.73) and evacuate, including the real Nova's
 * answer of 200 to a second evacuate of a running one (which leaves the server broken).
 */

const PROGRESS_STATUSES = new Set(["ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"]);

export function serverView(state: SandboxState, s: SimServer, res: Response, show: boolean): Record<string, unknown> {
  const root = locals(res).root;
  const status = serverStatus(s.vmState, s.taskState);
  const v: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    status,
    tenant_id: s.projectId,
    user_id: s.userId,
    metadata: { ...s.metadata },
    hostId: state.hostId(s),
    image: { id: s.imageId, links: [{ rel: "bookmark", href: `${root}/images/${s.imageId}` }] },
    flavor: mvAtLeast(res, "2.47")
      ? {
          vcpus: s.flavor.vcpus,
          ram: s.flavor.ram,
          disk: s.flavor.disk,
          ephemeral: s.flavor.ephemeral,
          swap: s.flavor.swap,
          original_name: s.flavor.name,
          extra_specs: { ...s.flavor.extraSpecs },
        }
      : { id: s.flavor.id, links: [{ rel: "bookmark", href: `${root}/flavors/${s.flavor.id}` }] },
    created: isoSeconds(s.createdMs),
    updated: isoSeconds(s.updatedMs),
    addresses: {},
    accessIPv4: "",
    accessIPv6: "",
    links: [
      { rel: "self", href: `${root}/v2.1/servers/${s.id}` },
      { rel: "bookmark", href: `${root}/servers/${s.id}` },
    ],
    "OS-DCF:diskConfig": "MANUAL",
  };
  if (PROGRESS_STATUSES.has(status)) v.progress = 0;
  Object.assign(v, {
    "OS-EXT-AZ:availability_zone": s.availabilityZone,
    config_drive: "",
    key_name: null,
    "OS-SRV-USG:launched_at": naiveMicro(Math.floor(s.launchedMs / 1000) * 1000),
    "OS-SRV-USG:terminated_at": null,
    "OS-EXT-SRV-ATTR:host": s.host,
    "OS-EXT-SRV-ATTR:instance_name": s.instanceName,
    "OS-EXT-SRV-ATTR:hypervisor_hostname": s.node,
  });
  if (mvAtLeast(res, "2.3")) {
    Object.assign(v, {
      "OS-EXT-SRV-ATTR:reservation_id": s.reservationId,
      "OS-EXT-SRV-ATTR:launch_index": 0,
      "OS-EXT-SRV-ATTR:hostname": s.name,
      "OS-EXT-SRV-ATTR:kernel_id": "",
      "OS-EXT-SRV-ATTR:ramdisk_id": "",
      "OS-EXT-SRV-ATTR:root_device_name": "/dev/sda",
      "OS-EXT-SRV-ATTR:user_data": null,
    });
  }
  Object.assign(v, {
    "OS-EXT-STS:task_state": s.taskState,
    "OS-EXT-STS:vm_state": s.vmState,
    "OS-EXT-STS:power_state": s.powerState,
    "os-extended-volumes:volumes_attached": [],
  });
  if (mvAtLeast(res, "2.16")) v.host_status = state.hostStatus(s);
  if (mvAtLeast(res, "2.9")) v.locked = s.locked;
  if (mvAtLeast(res, "2.73")) v.locked_reason = s.lockedReason;
  if (mvAtLeast(res, "2.19")) v.description = null;
  if (mvAtLeast(res, "2.26")) v.tags = [];
  if (mvAtLeast(res, "2.63")) v.trusted_image_certificates = null;
  if (show && mvAtLeast(res, "2.71")) v.server_groups = [];
  return v;
}

function intParam(req: Request, res: Response, name: string): number | undefined | null {
  const raw = queryParam(req, name);
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw)) {
    novaError(res, 400, `${name} param must be an integer`);
    return null;
  }
  const n = Number(raw);
  if (n < 0) {
    novaError(res, 400, `${name} param must be positive`);
    return null;
  }
  return n;
}

/** oslo strutils' TRUE_STRINGS and FALSE_STRINGS, sorted as its error message lists them. */
const BOOL_STRINGS = ["0", "1", "f", "false", "n", "no", "off", "on", "t", "true", "y", "yes"];

/** strutils.bool_from_string(strict=True): null for anything else. */
function strictBool(raw: string): boolean | null {
  const v = raw.trim().toLowerCase();
  if (["1", "t", "true", "on", "y", "yes"].includes(v)) return true;
  if (["0", "f", "false", "off", "n", "no"].includes(v)) return false;
  return null;
}

function listServers(state: SandboxState, req: Request, res: Response, detail: boolean): void {
  const l = locals(res);
  const allTenants = (req.query as Record<string, unknown>).all_tenants !== undefined && queryParam(req, "all_tenants") !== "0";
  if (allTenants && !requireAdmin(res, "os_compute_api:servers:index:get_all_tenants")) return;
  const limit = intParam(req, res, "limit");
  if (limit === null) return;
  const host = l.admin ? queryParam(req, "host") : undefined; // silently ignored for non-admins
  const name = queryParam(req, "name");
  const status = queryParam(req, "status")?.toUpperCase();
  const project = queryParam(req, "project_id") ?? queryParam(req, "tenant_id");
  const marker = queryParam(req, "marker");
  // `locked` (2.73+, api-ref "List Servers"): parsed like Nova's strict bool_from_string.
  const lockedRaw = mvAtLeast(res, "2.73") ? queryParam(req, "locked") : undefined;
  const locked = lockedRaw === undefined ? undefined : strictBool(lockedRaw);
  if (locked === null) {
    return novaError(res, 400, `Invalid input received: Unrecognized value '${lockedRaw}', acceptable values are: ${BOOL_STRINGS.map((b) => `'${b}'`).join(", ")}`);
  }
  // Validated as nova-api's query schema does (format date-time, several values allowed: the last counts).
  const changesSince = dateTimeParam(req, res, "changes-since", { single: false });
  if (changesSince === null) return;
  // Only `changes-since` shows deleted servers (servers.py: `deleted` is forced false otherwise).
  const rows = changesSince === undefined ? [...state.servers.values()] : [...state.servers.values(), ...state.deletedServers.values()];
  let list = rows.filter((s) => {
    // The database compares its DATETIME column, whole seconds.
    if (changesSince !== undefined && dbSeconds(s.updatedMs) < changesSince) return false;
    if (allTenants) {
      if (project && s.projectId !== project) return false;
    } else if (s.projectId !== l.token.projectId) return false;
    if (host && s.host !== host) return false;
    if (name && !new RegExp(name).test(s.name)) return false;
    if (status && serverStatus(s.vmState, s.taskState) !== status) return false;
    if (locked !== undefined && s.locked !== locked) return false;
    return true;
  });
  // Nova's default order: created_at desc, then id desc.
  list.sort((a, b) => b.createdMs - a.createdMs || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0));
  if (marker) {
    const i = list.findIndex((s) => s.id === marker);
    if (i < 0) return novaError(res, 400, `marker [${marker}] not found`);
    list = list.slice(i + 1);
  }
  const pageSize = Math.min(limit ?? state.opts.maxLimit, state.opts.maxLimit);
  const page = list.slice(0, pageSize);
  const body: Record<string, unknown> = {
    servers: page.map((s) =>
      detail
        ? serverView(state, s, res, false)
        : {
            id: s.id,
            name: s.name,
            links: [
              { rel: "self", href: `${l.root}/v2.1/servers/${s.id}` },
              { rel: "bookmark", href: `${l.root}/servers/${s.id}` },
            ],
          },
    ),
  };
  // Like Nova: a "next" link whenever the page is full, even if nothing follows.
  if (page.length > 0 && page.length === pageSize) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
      if (k === "marker") continue;
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one as string));
    }
    params.append("marker", page[page.length - 1]!.id);
    body.servers_links = [{ rel: "next", href: `${l.root}/v2.1/servers${detail ? "/detail" : ""}?${params.toString()}` }];
  }
  sendJson(res, 200, body);
}

function evacuateSchema(mv: string): JsonSchema {
  const props: Record<string, JsonSchema> = {
    host: { type: "string", minLength: 1, maxLength: 255 },
    adminPass: { type: "string" },
  };
  const inner: JsonSchema & { type: "object" } = { type: "object", properties: props, additionalProperties: false };
  if (cmpVersion(mv, "2.14") < 0) {
    props.onSharedStorage = { type: "boolean-like" };
    inner.required = ["onSharedStorage"];
  }
  if (cmpVersion(mv, "2.29") >= 0 && cmpVersion(mv, "2.68") < 0) props.force = { type: "boolean-like" };
  return { type: "object", properties: { evacuate: inner }, required: ["evacuate"], additionalProperties: false };
}

const LOCK_V273: JsonSchema = {
  type: "object",
  properties: {
    lock: {
      type: "object",
      nullable: true,
      properties: { locked_reason: { type: "string", minLength: 1, maxLength: 255 } },
      additionalProperties: false,
    },
  },
  required: ["lock"],
  additionalProperties: false,
};

const REBUILD_TASKS = new Set(["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"]);

function evacuate(state: SandboxState, s: SimServer, body: unknown, res: Response): void {
  if (!requireAdmin(res, "os_compute_api:os-evacuate")) return;
  const mv = locals(res).mv;
  const err = validateBody(body, evacuateSchema(mv));
  if (err) return novaError(res, 400, err);
  const ev = (body as { evacuate: { host?: string; force?: unknown; adminPass?: string } }).evacuate;
  const target = ev.host;
  if (cmpVersion(mv, "2.29") >= 0 && ev.force !== undefined && isTrueish(ev.force) && !target) {
    return novaError(res, 400, "Can't force to a non-provided destination");
  }
  if (target !== undefined && !state.hosts.has(target)) return novaError(res, 404, `Compute host ${target} not found.`);
  if (s.host === target) return novaError(res, 400, "The target host can't be the same one.");
  if (!["active", "stopped", "error"].includes(s.vmState)) {
    return novaError(res, 409, `Cannot 'evacuate' instance ${s.id} while it is in vm_state ${s.vmState}`);
  }
  // A real Nova does not check the task state for evacuate (compute/api.py task_state=None):
  // another task in progress is refused here as lifeboat's brief asks, but a running rebuild is
  // not — a second evacuate of a running one answers 200 and breaks the server, as observed.
  if (s.taskState !== null && !REBUILD_TASKS.has(s.taskState)) {
    return novaError(res, 409, `Cannot 'evacuate' instance ${s.id} while it is in task_state ${s.taskState}`);
  }
  const source = s.host ? state.hosts.get(s.host) : undefined;
  if (source && state.serviceIsUp(source)) return novaError(res, 400, `Compute service of ${source.name} is still in use.`);
  state.startEvacuation(s, { targetHost: target, stopAtEnd: cmpVersion(mv, "2.95") >= 0 });
  if (cmpVersion(mv, "2.14") < 0) {
    sendJson(res, 200, { adminPass: ev.adminPass ?? randomBytes(9).toString("base64url") });
    return;
  }
  sendJson(res, 200, null);
}

export function mountServers(router: Router, state: SandboxState): void {
  router.get("/servers", (req: Request, res: Response) => listServers(state, req, res, false));
  router.get("/servers/detail", (req: Request, res: Response) => listServers(state, req, res, true));

  router.get("/servers/:id", (req: Request, res: Response) => {
    const id = String(req.params.id);
    const s = state.servers.get(id);
    const l = locals(res);
    if (!s || (!l.admin && s.projectId !== l.token.projectId)) return novaError(res, 404, `Instance ${id} could not be found.`);
    sendJson(res, 200, { server: serverView(state, s, res, true) });
  });

  // Server metadata (server_metadata.py): the whole map, or one item (404 when the server has
  // no such key). The server is found as for GET /servers/{id}: another project's is not found.
  router.get("/servers/:id/metadata", (req: Request, res: Response) => {
    const id = String(req.params.id);
    const s = state.servers.get(id);
    const l = locals(res);
    if (!s || (!l.admin && s.projectId !== l.token.projectId)) return novaError(res, 404, `Instance ${id} could not be found.`);
    sendJson(res, 200, { metadata: { ...s.metadata } });
  });
  router.get("/servers/:id/metadata/:key", (req: Request, res: Response) => {
    const id = String(req.params.id);
    const key = String(req.params.key);
    const s = state.servers.get(id);
    const l = locals(res);
    if (!s || (!l.admin && s.projectId !== l.token.projectId)) return novaError(res, 404, `Instance ${id} could not be found.`);
    if (!Object.hasOwn(s.metadata, key)) return novaError(res, 404, "Metadata item was not found");
    sendJson(res, 200, { meta: { [key]: s.metadata[key] } });
  });

  router.post("/servers/:id/action", (req: Request, res: Response) => {
    const id = String(req.params.id);
    const body: unknown = req.body;
    const s = state.servers.get(id);
    const l = locals(res);
    if (typeof body !== "object" || body === null || Object.keys(body).length !== 1) {
      return novaError(res, 400, "Malformed request body");
    }
    const action = Object.keys(body)[0]!;
    if (!["evacuate", "lock", "unlock"].includes(action)) return novaError(res, 400, `There is no such action: ${action}`);
    if (!s || (!l.admin && s.projectId !== l.token.projectId)) return novaError(res, 404, `Instance ${id} could not be found.`);
    if (action === "evacuate") return evacuate(state, s, body, res);
    if (action === "lock") {
      if (mvAtLeast(res, "2.73")) {
        const err = validateBody(body, LOCK_V273);
        if (err) return novaError(res, 400, err);
      }
      const lock = (body as { lock: { locked_reason?: string } | null }).lock;
      s.locked = true;
      s.lockedReason = mvAtLeast(res, "2.73") && lock ? (lock.locked_reason ?? null) : null;
      s.updatedMs = state.clock.now();
      sendJson(res, 202, null);
      return;
    }
    s.locked = false;
    s.lockedReason = null;
    s.updatedMs = state.clock.now();
    sendJson(res, 202, null);
  });
}
