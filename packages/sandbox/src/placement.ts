import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { SandboxState, SimHost } from "./cloud-state.js";
import { cmpVersion, newRequestId, parseVersion, queryParam, requestedVersion, requireToken, sendJson } from "./nova-common.js";

/**
 * The simulated Placement service: resource providers (one per compute node, uuid = the
 * hypervisor id), their inventories (totals, reserved, allocation ratios) and usages (what
 * servers and running or `done` evacuations hold), as Placement 1.x answers them.
 */

function placementError(res: Response, status: number, title: string, detail: string): void {
  sendJson(res, status, {
    errors: [{ status, title, detail, request_id: res.get("x-openstack-request-id") ?? newRequestId(), code: "placement.undefined_code" }],
  });
}

function mv(res: Response): string {
  return (res.locals as { placementMv: string }).placementMv;
}

function atLeast(res: Response, v: string): boolean {
  return cmpVersion(mv(res), v) >= 0;
}

function providerView(h: SimHost, res: Response): Record<string, unknown> {
  const self = `/resource_providers/${h.nodeUuid}`;
  const links = [
    { rel: "self", href: self },
    { rel: "inventories", href: `${self}/inventories` },
    { rel: "usages", href: `${self}/usages` },
  ];
  if (atLeast(res, "1.1")) links.push({ rel: "aggregates", href: `${self}/aggregates` });
  if (atLeast(res, "1.6")) links.push({ rel: "traits", href: `${self}/traits` });
  if (atLeast(res, "1.11")) links.push({ rel: "allocations", href: `${self}/allocations` });
  const v: Record<string, unknown> = { uuid: h.nodeUuid, name: h.name, generation: h.generation, links };
  if (atLeast(res, "1.14")) {
    v.parent_provider_uuid = null;
    v.root_provider_uuid = h.nodeUuid;
  }
  return v;
}

export function createPlacementRouter(state: SandboxState): Router {
  const router = express.Router();
  const max = (): string => state.opts.placementMaxMicroversion;
  router.use((_req: Request, res: Response, next: NextFunction) => {
    res.set("x-openstack-request-id", newRequestId());
    next();
  });
  router.get("/", (_req: Request, res: Response) =>
    sendJson(res, 200, { versions: [{ id: "v1.0", max_version: max(), min_version: "1.0", status: "CURRENT", links: [{ rel: "self", href: "" }] }] }),
  );
  const authUri = (req: Request): string => `${req.protocol}://${req.get("host")}/identity`;
  router.use(requireToken(state, authUri));
  router.use((req: Request, res: Response, next: NextFunction) => {
    let v = requestedVersion(req, "placement") ?? "1.0";
    if (v === "latest") v = max();
    res.set("openstack-api-version", `placement ${v}`);
    res.set("vary", "openstack-api-version");
    if (!parseVersion(v) || cmpVersion(v, "1.0") < 0 || cmpVersion(v, max()) > 0) {
      return placementError(res, 406, "Not Acceptable", `Unacceptable version header: ${v}`);
    }
    (res.locals as { placementMv: string }).placementMv = v;
    if (!(res.locals as { admin: boolean }).admin) {
      return placementError(res, 403, "Forbidden", "Access was denied to this resource. Policy does not allow placement:resource_providers:list to be performed.");
    }
    next();
  });
  const provider = (req: Request, res: Response): SimHost | undefined => {
    const uuid = String(req.params.uuid);
    const h = [...state.hosts.values()].find((x) => x.nodeUuid === uuid);
    if (!h) placementError(res, 404, "Not Found", `The resource could not be found. No resource provider with uuid ${uuid} found`);
    return h;
  };
  router.get("/resource_providers", (req: Request, res: Response) => {
    const name = queryParam(req, "name");
    const uuid = queryParam(req, "uuid");
    const memberOf = queryParam(req, "member_of");
    const wanted = memberOf ? new Set(memberOf.replace(/^in:/, "").split(",")) : undefined;
    const list = [...state.hosts.values()].filter((h) => {
      if (name && h.name !== name) return false;
      if (uuid && h.nodeUuid !== uuid) return false;
      if (wanted && !state.aggregates.some((a) => wanted.has(a.uuid) && a.hosts.includes(h.name))) return false;
      return true;
    });
    sendJson(res, 200, { resource_providers: list.map((h) => providerView(h, res)) });
  });
  router.get("/resource_providers/:uuid", (req: Request, res: Response) => {
    const h = provider(req, res);
    if (h) sendJson(res, 200, providerView(h, res));
  });
  router.get("/resource_providers/:uuid/inventories", (req: Request, res: Response) => {
    const h = provider(req, res);
    if (!h) return;
    const inv = (total: number, reserved: number, ratio: number): Record<string, number> => ({
      total,
      reserved,
      min_unit: 1,
      max_unit: total,
      step_size: 1,
      allocation_ratio: ratio,
    });
    sendJson(res, 200, {
      resource_provider_generation: h.generation,
      inventories: {
        VCPU: inv(h.vcpus, 0, h.cpuAllocationRatio),
        MEMORY_MB: inv(h.memoryMb, h.reservedMemoryMb, h.ramAllocationRatio),
        DISK_GB: inv(h.diskGb, 0, h.diskAllocationRatio),
      },
    });
  });
  router.get("/resource_providers/:uuid/usages", (req: Request, res: Response) => {
    const h = provider(req, res);
    if (!h) return;
    const u = state.usage(h.name);
    sendJson(res, 200, { resource_provider_generation: h.generation, usages: { VCPU: u.vcpus, MEMORY_MB: u.ram, DISK_GB: u.disk } });
  });
  router.get("/resource_providers/:uuid/aggregates", (req: Request, res: Response) => {
    const h = provider(req, res);
    if (!h) return;
    const body: Record<string, unknown> = { aggregates: state.aggregates.filter((a) => a.hosts.includes(h.name)).map((a) => a.uuid) };
    if (atLeast(res, "1.19")) body.resource_provider_generation = h.generation;
    sendJson(res, 200, body);
  });
  router.use((_req: Request, res: Response) => placementError(res, 404, "Not Found", "The resource could not be found."));
  return router;
}
