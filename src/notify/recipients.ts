import pLimit from "p-limit";
import { z } from "zod";
import type { Logger } from "../logging.js";
import type { OpenStackSession } from "../openstack/types.js";
import type { InstanceResult } from "../domain/model.js";
import { errorMessage } from "../util/errors.js";
import { isPermanent } from "../domain/errors.js";
import type { TenantsConfig } from "./config.js";

/**
 * Who to tell about one project's instances. Sources, in this order (the per-project cap
 * keeps the first ones): the `static` map, each server's metadata key, each server's
 * creator, then Keystone users holding a configured role on the project:
 *
 *   GET /v3/role_assignments?scope.project.id=P&effective&include_names=true
 *   GET /v3/users/{id}            → `email` is an optional extra attribute
 *
 * `effective` expands group memberships and implied roles, so users who hold the role
 * through a group (or through `admin` → `member`) are found. There is no "users of a
 * project" API. Lookups are cached for the resolver's life (one notification run). A
 * server's metadata comes from the recovery's own listing of the host's instances when it
 * was recorded, so that telling tenants costs Nova no request per server.
 * Failures never throw: they are returned as problems, and the other sources still count.
 */

export interface Recipient {
  /** Lower-cased address. */
  email: string;
  /** Where it came from: "static", "metadata:<server>", "creator:<user>", "keystone:<user>". */
  sources: string[];
}

export interface ProjectRecipients {
  projectId: string;
  /** From Keystone's `include_names`, when it was asked. */
  projectName?: string;
  recipients: Recipient[];
  problems: string[];
  /**
   * Lookups that failed in a way a later try may not (a 5xx, a timeout, no answer): the
   * planning is tried again while it has tries left. A refusal (a 403, say) is not counted.
   */
  transient: number;
}

export interface RecipientResolverDeps {
  session?: OpenStackSession;
  logger: Logger;
  signal?: AbortSignal;
  /** Cloud calls in flight at once. */
  concurrency?: number;
  /**
   * Server metadata the recovery already recorded (its listing of the host's instances), by
   * server id: read from here instead of asking Nova once per server. A server not in it is
   * asked for.
   */
  recordedMetadata?: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

interface RoleAssignment {
  user?: { id?: string; name?: string };
  group?: { id?: string };
  role?: { id?: string; name?: string };
  scope?: { project?: { id?: string; name?: string } };
}

interface KeystoneUser {
  id: string;
  name?: string;
  enabled?: boolean;
  email?: unknown;
}

interface ProjectMembers {
  projectName?: string;
  users: { id: string; name?: string }[];
}

const emailSchema = z.email();

export function isEmail(s: string): boolean {
  return emailSchema.safeParse(s).success;
}

/** "a@x.org, b@y.org; c@z.org" → addresses (invalid entries returned apart). */
export function splitAddresses(value: string): { valid: string[]; invalid: string[] } {
  const parts = value
    .split(/[,;\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  return { valid: parts.filter(isEmail), invalid: parts.filter((p) => !isEmail(p)) };
}

export class RecipientResolver {
  readonly #members = new Map<string, Promise<ProjectMembers>>();
  readonly #users = new Map<string, Promise<KeystoneUser | null>>();
  readonly #metadata = new Map<string, Promise<string | null>>();
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #roles: Set<string>;

  constructor(
    private readonly cfg: TenantsConfig,
    private readonly deps: RecipientResolverDeps,
  ) {
    this.#limit = pLimit(deps.concurrency ?? 4);
    this.#roles = new Set(cfg.keystone.roles.map((r) => r.toLowerCase()));
  }

  async forProject(projectId: string, instances: readonly InstanceResult[]): Promise<ProjectRecipients> {
    const lookups = new Findings();
    const problems = lookups.problems;
    const found = new Map<string, Recipient>();
    const add = (email: string, source: string): void => {
      const key = email.trim().toLowerCase();
      const r = found.get(key);
      if (r) {
        if (!r.sources.includes(source)) r.sources.push(source);
      } else found.set(key, { email: key, sources: [source] });
    };
    const mine = instances.filter((i) => i.projectId === projectId);
    let projectName: string | undefined;

    for (const email of this.cfg.static[projectId] ?? []) add(email, "static");

    const needsSession = (this.cfg.metadata_key !== null && mine.length > 0) || this.cfg.creator || this.cfg.keystone.enabled;
    if (needsSession && !this.deps.session) {
      problems.push("no OpenStack session: only static recipients were used");
    } else if (this.deps.session) {
      const session = this.deps.session;
      if (this.cfg.metadata_key !== null) {
        const key = this.cfg.metadata_key;
        const values = await Promise.all(mine.map((i) => this.metadataValue(session, i.instanceId, key, lookups)));
        mine.forEach((inst, n) => {
          const v = values[n];
          if (!v) return;
          const { valid, invalid } = splitAddresses(v);
          for (const e of valid) add(e, `metadata:${inst.name}`);
          if (invalid.length) problems.push(`server ${inst.instanceId} metadata ${key}: not an address: ${invalid.join(", ")}`);
        });
      }
      if (this.cfg.creator) {
        const creators = [...new Set(mine.map((i) => i.userId).filter((u): u is string => !!u))];
        const users = await Promise.all(creators.map((id) => this.user(session, id, lookups)));
        for (const u of users) {
          const email = u && usableEmail(u);
          if (email) add(email, `creator:${u.name ?? u.id}`);
        }
      }
      if (this.cfg.keystone.enabled) {
        const members = await this.members(session, projectId, lookups);
        projectName = members?.projectName;
        const users = await Promise.all((members?.users ?? []).map((m) => this.user(session, m.id, lookups)));
        for (const u of users) {
          const email = u && usableEmail(u);
          if (email) add(email, `keystone:${u.name ?? u.id}`);
        }
      }
    }

    let recipients = [...found.values()];
    const max = this.cfg.max_recipients_per_project;
    if (recipients.length > max) {
      problems.push(`${recipients.length} recipients found, only the first ${max} told (max_recipients_per_project)`);
      this.deps.logger.warn({ projectId, found: recipients.length, max }, "too many tenant recipients; some are skipped");
      recipients = recipients.slice(0, max);
    }
    return { projectId, ...(projectName !== undefined ? { projectName } : {}), recipients, problems, transient: lookups.transient };
  }

  /** Users holding a configured role on the project (directly, through groups or implied roles). */
  private members(session: OpenStackSession, projectId: string, found: Findings): Promise<ProjectMembers | null> {
    let p = this.#members.get(projectId);
    if (!p) {
      p = this.#limit(async () => {
        const res = await session.request<{ role_assignments?: RoleAssignment[] }>({
          service: "identity",
          method: "GET",
          path: "/v3/role_assignments",
          // Keystone treats `effective` and `include_names` as true for any value but "0".
          query: { "scope.project.id": projectId, effective: true, include_names: true },
          ...(this.deps.signal ? { signal: this.deps.signal } : {}),
        });
        const users = new Map<string, { id: string; name?: string }>();
        let projectName: string | undefined;
        for (const a of res.data.role_assignments ?? []) {
          if (a.scope?.project?.id !== undefined && a.scope.project.id !== projectId) continue;
          projectName ??= a.scope?.project?.name;
          const id = a.user?.id;
          const role = a.role?.name?.toLowerCase();
          if (!id || !role || !this.#roles.has(role)) continue;
          users.set(id, { id, ...(a.user?.name !== undefined ? { name: a.user.name } : {}) });
        }
        return { ...(projectName !== undefined ? { projectName } : {}), users: [...users.values()] };
      });
      this.#members.set(projectId, p);
    }
    return p.catch((err: unknown) => {
      found.failed(`Keystone role assignments of project ${projectId}`, err);
      this.deps.logger.warn({ projectId, err: errorMessage(err) }, "cannot list the project's role assignments");
      return null;
    });
  }

  private user(session: OpenStackSession, userId: string, found: Findings): Promise<KeystoneUser | null> {
    let p = this.#users.get(userId);
    if (!p) {
      p = this.#limit(async () => {
        const res = await session.request<{ user?: KeystoneUser }>({
          service: "identity",
          method: "GET",
          path: `/v3/users/${encodeURIComponent(userId)}`,
          acceptStatus: [404],
          ...(this.deps.signal ? { signal: this.deps.signal } : {}),
        });
        return res.status === 404 ? null : (res.data.user ?? null);
      });
      this.#users.set(userId, p);
    }
    return p.catch((err: unknown) => {
      found.failed(`Keystone user ${userId}`, err);
      return null;
    });
  }

  /** The server's metadata item, or null when it has none (404 itemNotFound). */
  private metadataValue(session: OpenStackSession, serverId: string, key: string, found: Findings): Promise<string | null> {
    const recorded = this.deps.recordedMetadata?.get(serverId);
    if (recorded) return Promise.resolve(recorded[key] ?? null);
    let p = this.#metadata.get(serverId);
    if (!p) {
      p = this.#limit(async () => {
        const res = await session.request<{ meta?: Record<string, unknown> }>({
          service: "compute",
          method: "GET",
          path: `/servers/${encodeURIComponent(serverId)}/metadata/${encodeURIComponent(key)}`,
          acceptStatus: [404],
          ...(this.deps.signal ? { signal: this.deps.signal } : {}),
        });
        const v = res.status === 404 ? undefined : res.data.meta?.[key];
        return typeof v === "string" ? v : null;
      });
      this.#metadata.set(serverId, p);
    }
    return p.catch((err: unknown) => {
      found.failed(`server ${serverId} metadata ${key}`, err);
      return null;
    });
  }
}

/** The user's address, if the account is enabled and has a valid one. */
function usableEmail(u: KeystoneUser): string | null {
  if (u.enabled === false) return null;
  return typeof u.email === "string" && isEmail(u.email.trim()) ? u.email.trim() : null;
}

/** What one project's lookups ran into: the problems in words, and how many may pass on a later try. */
class Findings {
  readonly problems: string[] = [];
  transient = 0;

  failed(what: string, err: unknown): void {
    this.problems.push(`${what}: ${errorMessage(err)}`);
    if (!isPermanent(err)) this.transient++;
  }
}
