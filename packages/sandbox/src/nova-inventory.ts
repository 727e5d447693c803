import type { Request, Response, Router } from "express";
import { naiveSeconds, usageOf, type HostUsage, type SandboxState, type SimFlavor, type SimHost } from "./cloud-state.js";
import { locals, mvAtLeast, novaError, queryParam, requireAdmin, sendJson } from "./nova-common.js";

/**
 * What the simulated Nova says about capacity and placement groups: os-hypervisors (with
 * the resource figures until 2.87, trimmed from 2.88), os-aggregates and flavors.
 */

/** `usages`: every host's, read once for a listing (one pass over the servers, not one per hypervisor). */
function hypervisorView(state: SandboxState, h: SimHost, res: Response, usages?: ReadonlyMap<string, HostUsage>): Record<string, unknown> {
  const uuids = mvAtLeast(res, "2.53");
  const v: Record<string, unknown> = {
    id: uuids ? h.nodeUuid : h.nodeId,
    hypervisor_hostname: h.name,
    state: state.serviceIsUp(h) ? "up" : "down",
    status: h.disabled ? "disabled" : "enabled",
    hypervisor_type: "QEMU",
    hypervisor_version: 8002000,
    host_ip: h.hostIp,
    service: { id: uuids ? h.serviceUuid : h.serviceId, host: h.name, disabled_reason: h.disabledReason },
  };
  if (mvAtLeast(res, "2.88")) {
    v.uptime = null;
    return v;
  }
  const used = usages ? usageOf(usages, h.name) : state.usage(h.name);
  const memoryUsed = used.ram + h.reservedMemoryMb;
  Object.assign(v, {
    vcpus: h.vcpus,
    memory_mb: h.memoryMb,
    local_gb: h.diskGb,
    vcpus_used: used.vcpus,
    memory_mb_used: memoryUsed,
    local_gb_used: used.disk,
    free_ram_mb: h.memoryMb - memoryUsed,
    free_disk_gb: h.diskGb - used.disk,
    current_workload: 0,
    running_vms: used.servers,
    disk_available_least: h.diskGb - used.disk,
  });
  const cpuInfo = { arch: "x86_64", model: "Nehalem", vendor: "Intel", features: ["pge", "clflush"], topology: { cores: 1, threads: 1, sockets: h.vcpus } };
  v.cpu_info = mvAtLeast(res, "2.28") ? cpuInfo : JSON.stringify(cpuInfo);
  return v;
}

function flavorView(f: SimFlavor, res: Response): Record<string, unknown> {
  const root = locals(res).root;
  const v: Record<string, unknown> = {
    id: f.id,
    name: f.name,
    ram: f.ram,
    disk: f.disk,
    swap: mvAtLeast(res, "2.75") ? f.swap : f.swap === 0 ? "" : f.swap,
    "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
    "OS-FLV-DISABLED:disabled": false,
    vcpus: f.vcpus,
    "os-flavor-access:is_public": true,
    rxtx_factor: 1.0,
    links: [
      { rel: "self", href: `${root}/v2.1/flavors/${f.id}` },
      { rel: "bookmark", href: `${root}/flavors/${f.id}` },
    ],
  };
  if (mvAtLeast(res, "2.55")) v.description = null;
  if (mvAtLeast(res, "2.61")) v.extra_specs = { ...f.extraSpecs };
  return v;
}

export function mountInventory(router: Router, state: SandboxState): void {
  router.get("/os-hypervisors/detail", (req: Request, res: Response) => {
    if (!requireAdmin(res, "os_compute_api:os-hypervisors:detail")) return;
    const pattern = queryParam(req, "hypervisor_hostname_pattern");
    let list = [...state.hosts.values()].filter((h) => !pattern || h.name.includes(pattern));
    const marker = queryParam(req, "marker");
    if (marker) {
      const i = list.findIndex((h) => h.nodeUuid === marker || String(h.nodeId) === marker);
      if (i < 0) return novaError(res, 400, `marker [${marker}] not found`);
      list = list.slice(i + 1);
    }
    const rawLimit = queryParam(req, "limit");
    const limit = rawLimit === undefined ? undefined : Number(rawLimit);
    const size = Math.min(limit ?? state.opts.maxLimit, state.opts.maxLimit);
    const page = list.slice(0, size);
    const usages = mvAtLeast(res, "2.88") ? undefined : state.usages();
    const body: Record<string, unknown> = { hypervisors: page.map((h) => hypervisorView(state, h, res, usages)) };
    if (limit !== undefined && mvAtLeast(res, "2.33") && page.length > 0 && page.length === size) {
      const last = page[page.length - 1]!;
      const params = new URLSearchParams({ limit: String(limit), marker: mvAtLeast(res, "2.53") ? last.nodeUuid : String(last.nodeId) });
      if (pattern) params.set("hypervisor_hostname_pattern", pattern);
      body.hypervisors_links = [{ rel: "next", href: `${locals(res).root}/v2.1/os-hypervisors/detail?${params.toString()}` }];
    }
    sendJson(res, 200, body);
  });

  router.get("/os-aggregates", (_req: Request, res: Response) => {
    if (!requireAdmin(res, "os_compute_api:os-aggregates:index")) return;
    sendJson(res, 200, {
      aggregates: state.aggregates.map((a) => {
        const v: Record<string, unknown> = {
          availability_zone: a.availabilityZone,
          created_at: naiveSeconds(a.createdMs),
          deleted: false,
          deleted_at: null,
          hosts: [...a.hosts],
          id: a.id,
          metadata: { ...a.metadata },
          name: a.name,
          updated_at: null,
        };
        if (mvAtLeast(res, "2.41")) v.uuid = a.uuid;
        return v;
      }),
    });
  });

  router.get("/flavors/detail", (_req: Request, res: Response) => {
    sendJson(res, 200, { flavors: [...state.flavors.values()].map((f) => flavorView(f, res)) });
  });

  router.get("/flavors/:id", (req: Request, res: Response) => {
    const f = state.flavors.get(String(req.params.id));
    if (!f) return novaError(res, 404, `Flavor ${String(req.params.id)} could not be found.`);
    sendJson(res, 200, { flavor: flavorView(f, res) });
  });
}
