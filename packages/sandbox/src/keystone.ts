import { randomBytes } from "node:crypto";
import { STATUS_CODES } from "node:http";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { keystoneTime, type SandboxState, type SimProject, type SimToken, type SimUser } from "./cloud-state.js";
import { newRequestId, queryParam, queryValues, sendJson } from "./nova-common.js";

/**
 * The simulated Keystone v3: password and application-credential tokens (X-Subject-Token,
 * expires_at, catalog), token expiry, effective role assignments with implied roles and group
 * expansion, and users with the optional `email` extra attribute.
 */

export interface CatalogService {
  type: string;
  name: string;
  id: string;
  endpoints: { id: string; interface: string; region_id: string; url: string; region: string }[];
}

export interface KeystoneContext {
  state: SandboxState;
  /** The catalog as a client at `origin` sees it. */
  catalog(origin: string): CatalogService[];
}

function keystoneError(res: Response, status: number, title: string, message: string): void {
  sendJson(res, status, { error: { code: status, message, title } });
}

const AUTH_REQUIRED = "The request you have made requires authentication.";

function unauthorized(res: Response, message = AUTH_REQUIRED): void {
  keystoneError(res, 401, "Unauthorized", message);
}

function identityRoot(req: Request): string {
  return `${req.protocol}://${req.get("host")}${(req.res?.locals as { prefix?: string } | undefined)?.prefix ?? ""}/identity`;
}

type Json = Record<string, unknown>;

function asObj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function domainRef(state: SandboxState, d: Json | undefined): string | undefined {
  if (!d) return undefined;
  if (typeof d.id === "string") return state.domains.has(d.id) ? d.id : undefined;
  if (typeof d.name === "string") return [...state.domains.values()].find((x) => x.name === d.name)?.id;
  return undefined;
}

function findUser(state: SandboxState, u: Json): SimUser | undefined | "no-domain" {
  if (typeof u.id === "string") return state.users.get(u.id);
  if (typeof u.name !== "string") return undefined;
  const dom = asObj(u.domain);
  if (!dom) return "no-domain";
  const domainId = domainRef(state, dom);
  return [...state.users.values()].find((x) => x.name === u.name && x.domainId === domainId);
}

function findProject(state: SandboxState, p: Json): SimProject | undefined {
  if (typeof p.id === "string") return state.projects.get(p.id);
  const domainId = domainRef(state, asObj(p.domain));
  return [...state.projects.values()].find((x) => x.name === p.name && x.domainId === domainId);
}

function tokenBody(ctx: KeystoneContext, t: SimToken, origin: string, withCatalog: boolean): Json {
  const { state } = ctx;
  const user = state.users.get(t.userId)!;
  const dom = (id: string): Json => ({ id, name: state.domains.get(id)?.name ?? id });
  const body: Json = {
    methods: t.methods,
    user: { domain: dom(user.domainId), id: user.id, name: user.name, password_expires_at: null },
    audit_ids: [randomBytes(16).toString("base64url").slice(0, 22)],
    expires_at: keystoneTime(t.expiresAtMs),
    issued_at: keystoneTime(t.issuedAtMs),
  };
  if (t.projectId) {
    const p = state.projects.get(t.projectId)!;
    body.project = { domain: dom(p.domainId), id: p.id, name: p.name };
    body.is_domain = false;
    body.roles = [...state.effectiveRoleIds(t.userId, p.id)].map((id) => ({ id, name: state.roles.get(id)?.name ?? id }));
    if (withCatalog) body.catalog = ctx.catalog(origin);
  }
  if (t.appCredentialId) {
    const ac = state.applicationCredentials.get(t.appCredentialId)!;
    body.application_credential = { id: ac.id, name: ac.name, restricted: true };
  }
  return { token: body };
}

function issue(ctx: KeystoneContext, req: Request, res: Response): void {
  const { state } = ctx;
  const auth = asObj(asObj(req.body)?.auth);
  const identity = asObj(auth?.identity);
  const methods = identity?.methods;
  if (!auth || !identity || !Array.isArray(methods)) {
    return keystoneError(res, 400, "Bad Request", "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
  }
  const scope = asObj(auth.scope);
  let token: SimToken;
  if (methods.includes("application_credential")) {
    const ac = asObj(identity.application_credential);
    if (!ac) return unauthorized(res);
    let cred = typeof ac.id === "string" ? state.applicationCredentials.get(ac.id) : undefined;
    if (!cred && typeof ac.name === "string") {
      const owner = asObj(ac.user) ? findUser(state, asObj(ac.user)!) : undefined;
      if (owner && owner !== "no-domain") {
        cred = [...state.applicationCredentials.values()].find((c) => c.name === ac.name && c.userId === owner.id);
      }
    }
    if (!cred || ac.secret !== cred.secret) return unauthorized(res);
    if (scope) {
      return unauthorized(res, "Error authenticating with application credential: Application credentials cannot request a scope.");
    }
    if (!state.users.get(cred.userId)?.enabled) return unauthorized(res);
    token = state.issueToken({ userId: cred.userId, projectId: cred.projectId, methods: ["application_credential"], appCredentialId: cred.id });
  } else if (methods.includes("password")) {
    const u = asObj(asObj(identity.password)?.user);
    if (!u) return unauthorized(res);
    const user = findUser(state, u);
    if (user === "no-domain") {
      return keystoneError(res, 400, "Bad Request", "Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
    }
    if (!user || !user.enabled || u.password !== user.password) return unauthorized(res);
    let projectId: string | undefined;
    if (scope) {
      const p = asObj(scope.project);
      const project = p ? findProject(state, p) : undefined;
      if (!project || state.effectiveRoleIds(user.id, project.id).size === 0) return unauthorized(res);
      projectId = project.id;
    }
    token = state.issueToken({ userId: user.id, projectId, methods: ["password"] });
  } else {
    return unauthorized(res);
  }
  res.set("X-Subject-Token", token.id);
  res.set("Vary", "X-Auth-Token");
  const origin = `${req.protocol}://${req.get("host")}`;
  sendJson(res, 201, tokenBody(ctx, token, origin, req.query.nocatalog === undefined));
}

function requireKeystoneToken(state: SandboxState) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const t = state.validToken(req.get("X-Auth-Token"));
    if (!t) return unauthorized(res);
    res.locals.token = t;
    next();
  };
}

function isAdmin(state: SandboxState, res: Response): boolean {
  return state.isAdminToken(res.locals.token as SimToken);
}

function forbidden(res: Response, action: string): void {
  keystoneError(res, 403, "Forbidden", `You are not authorized to perform the requested action: ${action}.`);
}

/** The policy Keystone enforces on a call the simulated Keystone serves (path below `/identity`). */
function policyOf(method: string, path: string): string | undefined {
  if (method !== "GET" && method !== "HEAD") return undefined;
  if (path === "/v3/role_assignments") return "identity:list_role_assignments";
  if (path === "/v3/auth/tokens") return "identity:validate_token";
  if (/^\/v3\/users\/[^/]+$/.test(path)) return "identity:get_user";
  if (/^\/v3\/projects\/[^/]+$/.test(path)) return "identity:get_project";
  return undefined;
}

/**
 * Keystone's error body for an injected `status` on one of its calls: a 403 is its
 * ForbiddenAction naming the call's policy (as when the token lacks the role the policy asks
 * for), a 401 and a 404 are worded as Keystone words them, anything else is its UnexpectedError.
 */
export function keystoneErrorBody(status: number, req: { method: string; path: string }): { error: { code: number; message: string; title: string } } {
  const title = STATUS_CODES[status] ?? "Internal Server Error";
  if (status === 403) {
    const policy = policyOf(req.method, req.path);
    const message = policy ? `You are not authorized to perform the requested action: ${policy}.` : "You are not authorized to perform the requested action.";
    return { error: { code: status, message, title } };
  }
  if (status === 401) return { error: { code: status, message: AUTH_REQUIRED, title } };
  if (status === 404) return { error: { code: status, message: "The resource could not be found.", title } };
  return { error: { code: status, message: "An unexpected error prevented the server from fulfilling your request.", title } };
}

/**
 * A boolean query parameter as Keystone reads it (query_filter_is_true): true when present
 * with any value but "0" (`?effective`, `?effective=false` included), false when absent.
 * Of a repeated parameter Flask takes the first value.
 */
function queryFlag(req: Request, name: string): boolean {
  const values = queryValues(req, name);
  return values.length > 0 && values[0] !== "0";
}

function roleAssignments(state: SandboxState, req: Request, res: Response): void {
  if (!isAdmin(state, res)) return forbidden(res, "identity:list_role_assignments");
  const root = identityRoot(req);
  const effective = queryFlag(req, "effective");
  const names = queryFlag(req, "include_names");
  const projectFilter = queryParam(req, "scope.project.id");
  const userFilter = queryParam(req, "user.id");
  const roleFilter = queryParam(req, "role.id");
  const dom = (id: string): Json => ({ id, name: state.domains.get(id)?.name ?? id });
  const userRef = (id: string): Json => {
    const u = state.users.get(id)!;
    return names ? { id: u.id, name: u.name, domain: dom(u.domainId) } : { id: u.id };
  };
  const roleRef = (id: string): Json => (names ? { id, name: state.roles.get(id)?.name ?? id } : { id });
  const scopeRef = (pid: string): Json => {
    const p = state.projects.get(pid)!;
    return { project: names ? { id: p.id, name: p.name, domain: dom(p.domainId) } : { id: p.id } };
  };
  const rows: Json[] = [];
  for (const a of state.assignments) {
    if (projectFilter && a.projectId !== projectFilter) continue;
    const assignmentLink = a.userId
      ? `${root}/v3/projects/${a.projectId}/users/${a.userId}/roles/${a.roleId}`
      : `${root}/v3/projects/${a.projectId}/groups/${a.groupId}/roles/${a.roleId}`;
    const subjects: { userId?: string; groupId?: string; membership?: string }[] = [];
    if (a.userId) subjects.push({ userId: a.userId });
    else if (!effective) subjects.push({ groupId: a.groupId });
    else {
      const g = state.groups.get(a.groupId!);
      for (const m of g?.members ?? []) subjects.push({ userId: m, membership: `${root}/v3/groups/${a.groupId}/users/${m}` });
    }
    for (const sub of subjects) {
      if (userFilter && sub.userId !== userFilter) continue;
      const base = (roleId: string, links: Json): Json => {
        const row: Json = { links, scope: scopeRef(a.projectId), role: roleRef(roleId) };
        if (sub.userId) row.user = userRef(sub.userId);
        else {
          const g = state.groups.get(sub.groupId!)!;
          row.group = names ? { id: g.id, name: g.name, domain: dom(g.domainId) } : { id: g.id };
        }
        return row;
      };
      const links: Json = { assignment: assignmentLink };
      if (sub.membership) links.membership = sub.membership;
      if (!roleFilter || roleFilter === a.roleId) rows.push(base(a.roleId, links));
      if (!effective) continue;
      // Implied roles: each row points at the assignment of the role it was implied from.
      let frontier = [a.roleId];
      const seen = new Set(frontier);
      while (frontier.length > 0) {
        const next: string[] = [];
        for (const prior of frontier) {
          for (const [p, implied] of state.impliedRoles) {
            if (p !== prior || seen.has(implied)) continue;
            seen.add(implied);
            next.push(implied);
            const l: Json = {
              assignment: assignmentLink.replace(/\/roles\/[^/]+$/, `/roles/${prior}`),
              prior_role: `${root}/v3/prior_role/${implied}/implies/${prior}`,
            };
            if (sub.membership) l.membership = sub.membership;
            if (!roleFilter || roleFilter === implied) rows.push(base(implied, l));
          }
        }
        frontier = next;
      }
    }
  }
  sendJson(res, 200, { role_assignments: rows, links: { next: null, self: `${root}${req.originalUrl.replace(/^.*?\/v3/, "/v3")}`, previous: null } });
}

export function createKeystoneRouter(ctx: KeystoneContext): Router {
  const { state } = ctx;
  const router = express.Router();
  router.use((_req: Request, res: Response, next: NextFunction) => {
    res.set("x-openstack-request-id", newRequestId());
    res.set("Vary", "X-Auth-Token");
    next();
  });
  const versionDoc = (req: Request): Json => ({
    id: "v3.14",
    status: "stable",
    updated: "2020-04-07T00:00:00Z",
    links: [{ rel: "self", href: `${identityRoot(req)}/v3/` }],
    "media-types": [{ base: "application/json", type: "application/vnd.openstack.identity-v3+json" }],
  });
  router.get("/", (req: Request, res: Response) => sendJson(res, 300, { versions: { values: [versionDoc(req)] } }));
  router.get(["/v3", "/v3/"], (req: Request, res: Response) => sendJson(res, 200, { version: versionDoc(req) }));
  router.post("/v3/auth/tokens", (req: Request, res: Response) => issue(ctx, req, res));
  router.get("/v3/auth/tokens", requireKeystoneToken(state), (req: Request, res: Response) => {
    const subject = state.validToken(req.get("X-Subject-Token"));
    if (!subject) return keystoneError(res, 404, "Not Found", `Could not find token: ${req.get("X-Subject-Token") ?? ""}.`);
    res.set("X-Subject-Token", subject.id);
    sendJson(res, 200, tokenBody(ctx, subject, `${req.protocol}://${req.get("host")}`, req.query.nocatalog === undefined));
  });
  router.get("/v3/role_assignments", requireKeystoneToken(state), (req: Request, res: Response) => roleAssignments(state, req, res));
  router.get("/v3/users/:id", requireKeystoneToken(state), (req: Request, res: Response) => {
    const id = String(req.params.id);
    const t = res.locals.token as SimToken;
    if (t.userId !== id && !isAdmin(state, res)) return forbidden(res, "identity:get_user");
    const u = state.users.get(id);
    if (!u) return keystoneError(res, 404, "Not Found", `Could not find user: ${id}.`);
    const user: Json = {
      id: u.id,
      name: u.name,
      domain_id: u.domainId,
      enabled: u.enabled,
      password_expires_at: null,
      options: {},
      links: { self: `${identityRoot(req)}/v3/users/${u.id}` },
    };
    if (u.email !== undefined) user.email = u.email;
    if (u.defaultProjectId) user.default_project_id = u.defaultProjectId;
    sendJson(res, 200, { user });
  });
  router.get("/v3/projects/:id", requireKeystoneToken(state), (req: Request, res: Response) => {
    const id = String(req.params.id);
    const p = state.projects.get(id);
    if (!p) return keystoneError(res, 404, "Not Found", `Could not find project: ${id}.`);
    sendJson(res, 200, {
      project: {
        id: p.id,
        name: p.name,
        domain_id: p.domainId,
        description: "",
        enabled: true,
        parent_id: p.domainId,
        is_domain: false,
        tags: [],
        options: {},
        links: { self: `${identityRoot(req)}/v3/projects/${p.id}` },
      },
    });
  });
  router.use((_req: Request, res: Response) => keystoneError(res, 404, "Not Found", "The resource could not be found."));
  return router;
}
