import { z } from "zod";
import type { Logger } from "../logging.js";
import { atLeast, compareMicroversions, highestSupported, isMicroversion } from "./microversion.js";
import type { OpenStackRequest, OpenStackSession } from "./types.js";
import { parseHttpDate } from "../util/http-date.js";

/**
 * Microversions lifeboat is written and tested for; the client pins the highest one the
 * cloud supports, never `latest`:
 * - 2.53 (Pike, the floor): service and hypervisor ids are UUIDs and force-down/disable go
 *   through `PUT /os-services/{id}`; 2.47's embedded flavor (with extra_specs) comes with it.
 * - 2.59: os-migrations gains `uuid`, paging and a newest-first order.
 * - 2.73: `lock` carries a `locked_reason`, so lifeboat's locks are recognisable after a restart.
 * Deliberately not higher: 2.88 drops the hypervisor figures (the capacity fallback needs
 * them), nothing up to 2.94 helps evacuation, and 2.95 leaves evacuated servers SHUTOFF.
 */
export const NOVA_MICROVERSIONS = ["2.53", "2.59", "2.73"] as const;
export const NOVA_MIN_MICROVERSION = "2.53";

export class NovaVersionError extends Error {
  override name = "NovaVersionError";
}

export class NovaResponseError extends Error {
  override name = "NovaResponseError";
}

const link = z.looseObject({ rel: z.string(), href: z.string() });

export const novaServiceSchema = z.looseObject({
  id: z.union([z.string(), z.number()]),
  binary: z.string(),
  host: z.string(),
  zone: z.string().nullish(),
  status: z.string(),
  state: z.string().nullish(),
  updated_at: z.string().nullish(),
  disabled_reason: z.string().nullish(),
  forced_down: z.boolean().optional(),
});
export type NovaService = z.infer<typeof novaServiceSchema>;

// Servers and migrations are read by the hundred on every poll of a storm: their schemas keep
// only the fields lifeboat uses (four times faster than copying Nova's forty-odd others).
export const novaServerSchema = z.object({
  id: z.string(),
  name: z.string().default(""),
  status: z.string(),
  tenant_id: z.string().optional(),
  user_id: z.string().optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  image: z.union([z.looseObject({ id: z.string() }), z.string()]).nullish(),
  flavor: z
    .looseObject({
      id: z.string().optional(),
      original_name: z.string().optional(),
      vcpus: z.number().optional(),
      ram: z.number().optional(),
      disk: z.number().optional(),
      extra_specs: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  "OS-EXT-SRV-ATTR:host": z.string().nullish(),
  "OS-EXT-SRV-ATTR:hypervisor_hostname": z.string().nullish(),
  "OS-EXT-STS:task_state": z.string().nullish(),
  "OS-EXT-STS:vm_state": z.string().nullish(),
  "OS-EXT-AZ:availability_zone": z.string().nullish(),
  locked: z.boolean().optional(),
  locked_reason: z.string().nullish(),
  /** Its `updated_at`, ISO 8601 with a zone (`changes-since` compares it). */
  updated: z.string().optional(),
});
export type NovaServer = z.infer<typeof novaServerSchema>;

export const novaMigrationSchema = z.object({
  id: z.number(),
  uuid: z.string().optional(),
  instance_uuid: z.string(),
  source_compute: z.string().nullish(),
  dest_compute: z.string().nullish(),
  status: z.string(),
  migration_type: z.string().optional(),
  created_at: z.string(),
  updated_at: z.string().nullish(),
});
export type NovaMigration = z.infer<typeof novaMigrationSchema>;

export const novaHypervisorSchema = z.looseObject({
  id: z.union([z.string(), z.number()]),
  hypervisor_hostname: z.string(),
  state: z.string().optional(),
  status: z.string().optional(),
  service: z.looseObject({ id: z.union([z.string(), z.number()]), host: z.string(), disabled_reason: z.string().nullish() }),
  vcpus: z.number().optional(),
  vcpus_used: z.number().optional(),
  memory_mb: z.number().optional(),
  memory_mb_used: z.number().optional(),
  local_gb: z.number().optional(),
  local_gb_used: z.number().optional(),
  free_ram_mb: z.number().optional(),
  free_disk_gb: z.number().optional(),
  running_vms: z.number().optional(),
});
export type NovaHypervisor = z.infer<typeof novaHypervisorSchema>;

export const novaAggregateSchema = z.looseObject({
  id: z.number(),
  uuid: z.string().optional(),
  name: z.string(),
  availability_zone: z.string().nullish(),
  hosts: z.array(z.string()).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
});
export type NovaAggregate = z.infer<typeof novaAggregateSchema>;

const versionDocSchema = z.looseObject({
  version: z.looseObject({ id: z.string(), version: z.string(), min_version: z.string() }),
});
const versionsRootSchema = z.looseObject({
  versions: z.array(z.looseObject({ id: z.string(), version: z.string(), min_version: z.string() })),
});

// Response bodies, built once: a zod schema compiles a parser on first use, so building
// one per call cost ~40 µs a call (evacuation tracking looks at every server ten times a second).
const servicesBody = z.looseObject({ services: z.array(novaServiceSchema) });
const serviceBody = z.looseObject({ service: novaServiceSchema });
const serversPage = z.looseObject({ servers: z.array(novaServerSchema), servers_links: z.array(link).optional() });
const serverBody = z.looseObject({ server: novaServerSchema });
const migrationsPage = z.looseObject({ migrations: z.array(novaMigrationSchema), migrations_links: z.array(link).optional() });
const hypervisorsPage = z.looseObject({ hypervisors: z.array(novaHypervisorSchema), hypervisors_links: z.array(link).optional() });
const aggregatesBody = z.looseObject({ aggregates: z.array(novaAggregateSchema) });

/** A listing and when Nova answered it: its `Date` header (the first page's), ms; undefined when it sent none. */
export interface DatedListing<T> {
  items: T[];
  date: number | undefined;
}

/** Filters of `GET /os-migrations` lifeboat uses (`changes-since` from 2.59; Nova ignores it below). */
export interface MigrationFilter {
  instance_uuid?: string;
  migration_type?: string;
  source_compute?: string;
  status?: string;
  "changes-since"?: string;
}

export interface NovaVersionInfo {
  /** The pinned microversion every call of lifeboat sends. */
  microversion: string;
  min: string;
  max: string;
}

export interface NovaClientOptions {
  logger: Logger;
  /** Override the candidate list (tests); each must be ≥ 2.53. */
  microversions?: readonly string[];
}

export interface ServiceUpdate {
  status?: "enabled" | "disabled";
  disabled_reason?: string;
  forced_down?: boolean;
}

/** Evacuation statuses that mean "still running": never send a second evacuate then. */
export const OPEN_MIGRATION_STATUSES: readonly string[] = [
  "accepted",
  "pre-migrating",
  "migrating",
  "queued",
  "preparing",
  "running",
  "post-migrating",
];
export const FAILED_MIGRATION_STATUSES: readonly string[] = ["error", "failed", "cancelled"];

/** Newest first: created_at, then id (below 2.59 Nova returns no defined order). */
export function newestFirst(a: NovaMigration, b: NovaMigration): number {
  const t = Date.parse(`${b.created_at}Z`) - Date.parse(`${a.created_at}Z`);
  return t !== 0 && Number.isFinite(t) ? t : b.id - a.id;
}

/** A typed Nova client over the Keystone session, pinned to one negotiated microversion. */
export class NovaClient {
  private info: NovaVersionInfo | undefined;
  private negotiating: Promise<NovaVersionInfo> | undefined;
  private readonly log: Logger;
  private readonly wanted: readonly string[];

  constructor(
    readonly session: OpenStackSession,
    opts: NovaClientOptions,
  ) {
    this.log = opts.logger.child({ component: "nova" });
    this.wanted = opts.microversions ?? NOVA_MICROVERSIONS;
    for (const v of this.wanted) {
      if (!isMicroversion(v) || compareMicroversions(v, NOVA_MIN_MICROVERSION) < 0) {
        throw new NovaVersionError(`microversion ${v} is below lifeboat's floor ${NOVA_MIN_MICROVERSION}`);
      }
    }
  }

  /** The pinned microversion; throws before `negotiate()`. */
  get microversion(): string {
    if (!this.info) throw new NovaVersionError("Nova microversion not negotiated yet: call negotiate() first");
    return this.info.microversion;
  }

  get versionInfo(): NovaVersionInfo | undefined {
    return this.info;
  }

  /** For the start-up log. */
  describe(): string {
    if (!this.info) return "Nova (microversion not negotiated yet)";
    return `Nova microversion ${this.info.microversion} (cloud supports ${this.info.min}–${this.info.max})`;
  }

  /** True when the pinned microversion is at least `v`. */
  supports(v: string): boolean {
    return atLeast(this.microversion, v);
  }

  /** Discover the cloud's range (the v2.1 version document) and pin a microversion. */
  negotiate(signal?: AbortSignal): Promise<NovaVersionInfo> {
    if (this.info) return Promise.resolve(this.info);
    this.negotiating ??= this.discover(signal).finally(() => {
      this.negotiating = undefined;
    });
    return this.negotiating;
  }

  private async discover(signal?: AbortSignal): Promise<NovaVersionInfo> {
    const res = await this.session.request({ service: "compute", method: "GET", path: "/", signal });
    let min: string;
    let max: string;
    const doc = versionDocSchema.safeParse(res.data);
    if (doc.success) {
      min = doc.data.version.min_version;
      max = doc.data.version.version;
    } else {
      const root = versionsRootSchema.safeParse(res.data);
      const v21 = root.success ? root.data.versions.find((v) => v.id === "v2.1") : undefined;
      if (!v21) throw new NovaResponseError("the compute endpoint answered no v2.1 version document");
      min = v21.min_version;
      max = v21.version;
    }
    if (!isMicroversion(max) || !isMicroversion(min)) {
      throw new NovaVersionError(`this Nova announces no microversions (version "${max}"): lifeboat needs ${NOVA_MIN_MICROVERSION} or newer`);
    }
    const chosen = highestSupported(this.wanted, min, max);
    if (!chosen) {
      throw new NovaVersionError(
        `this Nova supports microversions ${min}–${max}; lifeboat needs at least ${NOVA_MIN_MICROVERSION} (Nova 16 "Pike" or newer) and refuses to run below it`,
      );
    }
    this.info = { microversion: chosen, min, max };
    this.log.info({ microversion: chosen, min, max }, `using ${this.describe()}`);
    return this.info;
  }

  private async call<T>(
    req: Omit<OpenStackRequest, "service" | "microversion"> & { microversion?: string },
    schema: z.ZodType<T>,
    onHeaders?: (headers: Record<string, string>) => void,
  ): Promise<T> {
    await this.negotiate(req.signal);
    const res = await this.session.request({ service: "compute", ...req, microversion: req.microversion ?? this.microversion });
    onHeaders?.(res.headers);
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) {
      throw new NovaResponseError(
        `unexpected answer to ${req.method} ${req.path}: ${parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; ")}`,
      );
    }
    return parsed.data;
  }

  // ---- os-services ----------------------------------------------------------------------

  async listServices(filter: { binary?: string; host?: string } = {}, signal?: AbortSignal): Promise<NovaService[]> {
    return (await this.readServices(filter, signal)).services;
  }

  /**
   * The service listing with Nova's time of the answer: its `Date` header (whole seconds,
   * ISO 8601), or null when there is none or it is not an HTTP date. nova-api's WSGI server
   * (eventlet, or Apache/uWSGI) writes it as it sends the answer, after reading the services.
   */
  async readServices(filter: { binary?: string; host?: string } = {}, signal?: AbortSignal): Promise<{ services: NovaService[]; novaTime: string | null }> {
    let novaTime: string | null = null;
    const body = await this.call(
      { method: "GET", path: "/os-services", query: { binary: filter.binary, host: filter.host }, signal },
      servicesBody,
      (headers) => {
        const ms = parseHttpDate(headers.date);
        novaTime = ms === null ? null : new Date(ms).toISOString();
      },
    );
    return { services: body.services, novaTime };
  }

  /** `PUT /os-services/{uuid}` (≥ 2.53). Setting fields to values is idempotent: retried like a GET. */
  async updateService(id: string, update: ServiceUpdate, signal?: AbortSignal): Promise<NovaService> {
    const body = await this.call(
      { method: "PUT", path: `/os-services/${encodeURIComponent(id)}`, body: update, idempotent: true, signal },
      serviceBody,
    );
    return body.service;
  }

  // ---- servers ----------------------------------------------------------------------------

  /** `GET /servers/detail` following `servers_links` rel=next until the last page. */
  async listServers(query: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<NovaServer[]> {
    return (await this.listServersDated(query, signal)).items;
  }

  /** `listServers` with the time Nova answered the first page (for `changes-since` polling). */
  async listServersDated(query: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<DatedListing<NovaServer>> {
    const all: NovaServer[] = [];
    const seen = new Set<string>();
    let date: number | undefined;
    let first = true;
    let page: Record<string, string | number | boolean | undefined> = { ...query };
    for (;;) {
      const body = await this.call({ method: "GET", path: "/servers/detail", query: page, signal }, serversPage, (headers) => {
        if (first) date = parseHttpDate(headers.date) ?? undefined;
      });
      first = false;
      all.push(...body.servers);
      const next = body.servers_links?.find((l) => l.rel === "next");
      if (!next || body.servers.length === 0) break;
      const params = new URL(next.href, "http://placeholder/").searchParams;
      const marker = params.get("marker");
      if (!marker || seen.has(marker)) break;
      seen.add(marker);
      // Keep our own path and filters; take only the paging parameters from the link.
      page = { ...query, marker, limit: params.get("limit") ?? query.limit };
    }
    return { items: all, date };
  }

  /** The server, or null when Nova says 404. */
  async getServer(id: string, signal?: AbortSignal): Promise<NovaServer | null> {
    await this.negotiate(signal);
    const res = await this.session.request({
      service: "compute",
      method: "GET",
      path: `/servers/${encodeURIComponent(id)}`,
      microversion: this.microversion,
      acceptStatus: [404],
      signal,
    });
    if (res.status === 404) return null;
    const parsed = serverBody.safeParse(res.data);
    if (!parsed.success) throw new NovaResponseError(`unexpected answer to GET /servers/${id}: ${parsed.error.message}`);
    return parsed.data.server;
  }

  /** `POST /servers/{id}/action {"evacuate": …}`: never retried here (a second evacuate breaks the server). */
  async evacuate(id: string, opts: { host?: string } = {}, signal?: AbortSignal): Promise<void> {
    await this.negotiate(signal);
    const evacuate: Record<string, string> = {};
    if (opts.host) evacuate.host = opts.host;
    await this.session.request({
      service: "compute",
      method: "POST",
      path: `/servers/${encodeURIComponent(id)}/action`,
      microversion: this.microversion,
      body: { evacuate },
      idempotent: false,
      signal,
    });
  }

  /** Lock, with a reason from 2.73. Locking a locked server is harmless: retried like a GET. */
  async lock(id: string, reason: string | undefined, signal?: AbortSignal): Promise<void> {
    await this.negotiate(signal);
    const body = this.supports("2.73") && reason ? { lock: { locked_reason: reason.slice(0, 255) } } : { lock: null };
    await this.session.request({
      service: "compute",
      method: "POST",
      path: `/servers/${encodeURIComponent(id)}/action`,
      microversion: this.microversion,
      body,
      idempotent: true,
      signal,
    });
  }

  async unlock(id: string, signal?: AbortSignal): Promise<void> {
    await this.negotiate(signal);
    await this.session.request({
      service: "compute",
      method: "POST",
      path: `/servers/${encodeURIComponent(id)}/action`,
      microversion: this.microversion,
      body: { unlock: null },
      idempotent: true,
      signal,
    });
  }

  // ---- os-migrations ----------------------------------------------------------------------

  /** Migrations matching the filter, newest first whatever the microversion. */
  async listMigrations(filter: MigrationFilter, signal?: AbortSignal): Promise<NovaMigration[]> {
    return (await this.listMigrationsDated(filter, signal)).items;
  }

  /** `listMigrations` with the time Nova answered the first page (for `changes-since` polling). */
  async listMigrationsDated(filter: MigrationFilter, signal?: AbortSignal): Promise<DatedListing<NovaMigration>> {
    const all: NovaMigration[] = [];
    const seen = new Set<string>();
    let date: number | undefined;
    let first = true;
    let page: Record<string, string | undefined> = { ...filter };
    for (;;) {
      const body = await this.call({ method: "GET", path: "/os-migrations", query: page, signal }, migrationsPage, (headers) => {
        if (first) date = parseHttpDate(headers.date) ?? undefined;
      });
      first = false;
      all.push(...body.migrations);
      const next = body.migrations_links?.find((l) => l.rel === "next");
      if (!next || body.migrations.length === 0) break;
      const params = new URL(next.href, "http://placeholder/").searchParams;
      const marker = params.get("marker");
      if (!marker || seen.has(marker)) break;
      seen.add(marker);
      page = { ...filter, marker, limit: params.get("limit") ?? undefined };
    }
    return { items: all.sort(newestFirst), date };
  }

  // ---- hypervisors, aggregates ------------------------------------------------------------

  /** `GET /os-hypervisors/detail`, at `microversion` when given (2.87 still has the figures). */
  async listHypervisors(opts: { hostnamePattern?: string; microversion?: string; signal?: AbortSignal } = {}): Promise<NovaHypervisor[]> {
    const all: NovaHypervisor[] = [];
    const seen = new Set<string>();
    let page: Record<string, string | undefined> = { hypervisor_hostname_pattern: opts.hostnamePattern };
    for (;;) {
      const body = await this.call(
        { method: "GET", path: "/os-hypervisors/detail", query: page, microversion: opts.microversion, signal: opts.signal },
        hypervisorsPage,
      );
      all.push(...body.hypervisors);
      const next = body.hypervisors_links?.find((l) => l.rel === "next");
      if (!next || body.hypervisors.length === 0) break;
      const params = new URL(next.href, "http://placeholder/").searchParams;
      const marker = params.get("marker");
      if (!marker || seen.has(marker)) break;
      seen.add(marker);
      page = { hypervisor_hostname_pattern: opts.hostnamePattern, marker, limit: params.get("limit") ?? undefined };
    }
    return all;
  }

  async listAggregates(signal?: AbortSignal): Promise<NovaAggregate[]> {
    const body = await this.call(
      { method: "GET", path: "/os-aggregates", signal },
      aggregatesBody,
    );
    return body.aggregates;
  }
}
