import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import axios from "axios";
import express, { type Request } from "express";
import { OpenStackApiError, type OpenStackRequest, type OpenStackResponse, type OpenStackSession } from "../../../src/openstack/types.js";

/**
 * A small Keystone + Nova stand-in for the recipient lookups, answering like the real APIs
 * (see test/fixtures/openstack/keystone-*.json):
 *  - GET /v3/role_assignments?scope.project.id=P[&effective][&include_names]: without
 *    `effective`, group assignments come back as group rows; with it, groups are expanded
 *    to their users and implied roles (admin → member → reader) are added, each implied
 *    row carrying a `prior_role` link, as Keystone does;
 *  - GET /v3/users/{id}: `email` only when the user has one (an "extra" attribute); 404
 *    with Keystone's error body for an unknown user;
 *  - GET /v2.1/servers/{id}/metadata/{key}: `{"meta": {key: value}}`, or 404 itemNotFound;
 *  - every call needs an X-Auth-Token (401 otherwise).
 * The fixture's project and user are served verbatim.
 */

const FIXTURES = "test/fixtures/openstack";
interface Fixture {
  response: { status: number; body: unknown };
}
const fixture = (name: string): Fixture => JSON.parse(readFileSync(`${FIXTURES}/${name}`, "utf8")) as Fixture;
const ROLE_FIXTURE = fixture("keystone-role-assignments-admin-project.json");
const USER_FIXTURE = fixture("keystone-user.json");
export const FIXTURE_PROJECT_ID = "2b0a5cf20f6746688419d417e63fa158";
export const FIXTURE_USER_ID = "d9db141056094f61b37eeaff924d70aa";

export interface CloudUser {
  name: string;
  email?: string;
  enabled?: boolean;
}

export interface CloudData {
  users: Record<string, CloudUser>;
  /** group id → member user ids */
  groups?: Record<string, string[]>;
  projects: Record<string, { name: string; assignments: { user?: string; group?: string; role: string }[] }>;
  /** server id → metadata */
  servers?: Record<string, Record<string, string>>;
  /** project id → HTTP status answered to its role_assignments query (e.g. 403). */
  failRoleAssignments?: Record<string, number>;
}

const ROLE_IDS: Record<string, string> = { admin: "46a624cd03ce496da7e011b925bc6684", member: "0ed56b7ca77847178f73a2051e7f4f1b", reader: "60db47b12d8f49ba9a67265770df62a2" };
const IMPLIES: Record<string, string> = { admin: "member", member: "reader" };
const TOKEN = "stub-token-0123456789";

export interface CloudStub {
  session: OpenStackSession;
  requests: { method: string; path: string; query: Record<string, string> }[];
  close(): Promise<void>;
}

function flag(req: Request, name: string): boolean {
  // Keystone's query_filter_is_true: present and not "0".
  const q = req.query as Record<string, unknown>;
  return name in q && q[name] !== "0";
}

export async function startCloudStub(data: CloudData): Promise<CloudStub> {
  const app = express();
  const requests: CloudStub["requests"] = [];
  app.use((req, res, next) => {
    requests.push({ method: req.method, path: req.path, query: req.query as Record<string, string> });
    if (req.get("X-Auth-Token") !== TOKEN) {
      res.status(401).json({ error: { code: 401, message: "The request you have made requires authentication.", title: "Unauthorized" } });
      return;
    }
    next();
  });

  app.get("/identity/v3/role_assignments", (req, res) => {
    const raw = (req.query as Record<string, unknown>)["scope.project.id"];
    const pid = typeof raw === "string" ? raw : "";
    const effective = flag(req, "effective");
    const names = flag(req, "include_names");
    if (pid === FIXTURE_PROJECT_ID && effective && names) {
      res.status(ROLE_FIXTURE.response.status).json(ROLE_FIXTURE.response.body);
      return;
    }
    const failing = data.failRoleAssignments?.[pid];
    if (failing) {
      res.status(failing).json({ error: { code: failing, message: "You are not authorized to perform the requested action: identity:list_role_assignments.", title: "Forbidden" } });
      return;
    }
    const project = data.projects[pid];
    const rows: unknown[] = [];
    const scope = (p: { name: string }) => ({ project: { id: pid, ...(names ? { name: p.name, domain: { id: "default", name: "Default" } } : { domain: { id: "default" } }) } });
    const role = (r: string) => ({ id: ROLE_IDS[r] ?? r, ...(names ? { name: r } : {}) });
    const userRef = (u: string) => ({ id: u, ...(names ? { name: data.users[u]?.name ?? u, domain: { id: "default", name: "Default" } } : {}) });
    for (const a of project?.assignments ?? []) {
      const users = a.user ? [a.user] : effective ? (data.groups?.[a.group ?? ""] ?? []) : [];
      if (a.group && !effective) {
        rows.push({ group: { id: a.group }, role: role(a.role), scope: scope(project!), links: { assignment: `http://stub/v3/projects/${pid}/groups/${a.group}/roles/${role(a.role).id}` } });
        continue;
      }
      for (const u of users) {
        let r: string | undefined = a.role;
        let prior: string | undefined;
        while (r) {
          rows.push({
            user: userRef(u),
            role: role(r),
            scope: scope(project!),
            links: { assignment: `http://stub/v3/projects/${pid}/users/${u}/roles/${role(a.role).id}`, ...(prior ? { prior_role: `http://stub/v3/prior_role/${role(r).id}/implies/${role(prior).id}` } : {}) },
          });
          if (!effective) break;
          prior = r;
          r = IMPLIES[r];
        }
      }
    }
    res.json({ role_assignments: rows, links: { next: null, self: `http://stub${req.originalUrl}`, previous: null } });
  });

  app.get("/identity/v3/users/:id", (req, res) => {
    const id = req.params.id;
    if (id === FIXTURE_USER_ID) {
      res.status(USER_FIXTURE.response.status).json(USER_FIXTURE.response.body);
      return;
    }
    const u = data.users[id];
    if (!u) {
      res.status(404).json({ error: { code: 404, message: `Could not find user: ${id}.`, title: "Not Found" } });
      return;
    }
    res.json({
      user: {
        id,
        name: u.name,
        domain_id: "default",
        enabled: u.enabled ?? true,
        password_expires_at: null,
        options: {},
        ...(u.email !== undefined ? { email: u.email } : {}),
        links: { self: `http://stub/v3/users/${id}` },
      },
    });
  });

  app.get("/compute/v2.1/servers/:id/metadata/:key", (req, res) => {
    const server = data.servers?.[req.params.id];
    if (!server) {
      res.status(404).json({ itemNotFound: { code: 404, message: `Instance ${req.params.id} could not be found.` } });
      return;
    }
    const v = server[req.params.key];
    if (v === undefined) {
      res.status(404).json({ itemNotFound: { code: 404, message: "Metadata item was not found" } });
      return;
    }
    res.json({ meta: { [req.params.key]: v } });
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const endpoints = { identity: `${base}/identity`, compute: `${base}/compute/v2.1`, placement: `${base}/placement` };

  // Just enough of the OpenStackSession contract: endpoint by service type, token header,
  // acceptStatus, and OpenStackApiError with the service's message.
  const session: OpenStackSession = {
    async request<T>(req: OpenStackRequest): Promise<OpenStackResponse<T>> {
      const url = `${endpoints[req.service]}${req.path}`;
      const res = await axios.request<T>({
        url,
        method: req.method,
        params: req.query,
        headers: { "X-Auth-Token": TOKEN, ...(req.headers ?? {}) },
        validateStatus: () => true,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      if (res.status >= 400 && !(req.acceptStatus ?? []).includes(res.status)) {
        const body = res.data as { error?: { message?: string }; itemNotFound?: { message?: string } } | undefined;
        const message = body?.error?.message ?? body?.itemNotFound?.message ?? `HTTP ${res.status}`;
        throw new OpenStackApiError(res.status, message, req.method, url, res.data);
      }
      return { status: res.status, headers: {}, data: res.data };
    },
  };

  return {
    session,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
