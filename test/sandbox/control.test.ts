import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { adminToken, nova, waitUntil } from "./support/cloud.js";

/**
 * The sandbox's control API over HTTP, as an operator (or a test driving a real lifeboat
 * process) uses it: faults injected into the simulated cloud, and its request log.
 */

let site: Sandbox | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

async function start(): Promise<Sandbox> {
  site = await startSandbox({ controlPort: 0, cloud: { generate: { hosts: 2, serversPerHost: 2 } } });
  return site;
}

interface Answer {
  status: number;
  body: unknown;
}

async function control(s: Sandbox, method: string, path: string, body?: unknown, raw?: { type: string; text: string }): Promise<Answer> {
  const res = await fetch(`${s.controlUrl!}${path}`, {
    method,
    headers: raw ? { "content-type": raw.type } : body === undefined ? {} : { "content-type": "application/json" },
    body: raw ? raw.text : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

interface LoggedRequest {
  seq: number;
  time: string;
  service: string;
  method: string;
  path: string;
  action?: string;
  status?: number;
  fault?: string;
  client_closed?: boolean;
}
interface RequestLog {
  requests: LoggedRequest[];
  counts: Record<string, number>;
  last: number;
}

describe("sandbox control API: faults", () => {
  it("a status fault injected over HTTP hits the matching requests, is listed with its hits, and is removed by id", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const made = await control(s, "POST", "/faults", { kind: "status", status: 503, times: 2, match: { service: "compute", method: "get", path: "^/v2\\.1/os-services$" } });
    expect(made.status).toBe(201);
    const { id } = made.body as { id: number };
    expect(typeof id).toBe("number");

    // Not matched: another path, another method.
    expect((await nova(s.cloud, token, "/os-hypervisors/detail")).status).toBe(200);
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(503);
    const listed = await control(s, "GET", "/faults");
    expect(listed.body).toEqual({ faults: [{ id, kind: "status", status: 503, match: { service: "compute", method: "GET", path: "^/v2\\.1/os-services$" }, hits: 1, remaining: 1 }] });
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(503);
    // Used up: gone from the list, and normal answers again.
    expect((await control(s, "GET", "/faults")).body).toEqual({ faults: [] });
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(200);
    expect((await control(s, "DELETE", `/faults/${id}`)).status).toBe(404);

    const forever = (await control(s, "POST", "/faults", { kind: "status", match: { path: "os-services" } })).body as { id: number };
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(500);
    expect(((await control(s, "GET", "/faults")).body as { faults: { remaining: unknown }[] }).faults[0]!.remaining).toBeNull();
    expect((await control(s, "DELETE", `/faults/${forever.id}`)).status).toBe(204);
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(200);
  });

  it("a fault matched by a request's query or its body's key (a server action), from an HTTP body", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const byQuery = await control(s, "POST", "/faults", { kind: "status", status: 503, match: { service: "compute", path: "^/v2\\.1/os-services$", query: { host: "compute-1" } } });
    expect(byQuery.status).toBe(201);
    expect((await nova(s.cloud, token, "/os-services?host=compute-2")).status).toBe(200);
    expect((await nova(s.cloud, token, "/os-services")).status).toBe(200);
    expect((await nova(s.cloud, token, "/os-services?host=compute-1")).status).toBe(503);
    const server = [...s.cloud.state.servers.values()][0]!;
    const byAction = await control(s, "POST", "/faults", { kind: "status", status: 409, times: 1, match: { method: "POST", action: "lock" } });
    expect(byAction.status).toBe(201);
    const action = (body: unknown): Promise<Response> =>
      fetch(`${s.cloud.endpoints.compute}/servers/${server.id}/action`, { method: "POST", headers: { "X-Auth-Token": token, "Content-Type": "application/json", "OpenStack-API-Version": "compute 2.73" }, body: JSON.stringify(body) });
    expect((await action({ unlock: null })).status).toBe(202);
    expect((await action({ lock: null })).status).toBe(409);
    const listed = ((await control(s, "GET", "/faults")).body as { faults: { match: Record<string, unknown> }[] }).faults;
    expect(listed.map((f) => f.match)).toEqual([{ service: "compute", path: "^/v2\\.1/os-services$", query: { host: "compute-1" } }]);
    const bad = await control(s, "POST", "/faults", { kind: "status", match: { query: { host: 1 } } });
    expect(bad.status).toBe(400);
    expect((bad.body as { error: string }).error).toContain("match.query.host");
  });

  it("a 429 with Retry-After from an HTTP body; retry_after only on a status fault", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const made = await control(s, "POST", "/faults", { kind: "status", status: 429, retry_after: 5, times: 1, match: { service: "compute" } });
    expect(made.status).toBe(201);
    expect(((await control(s, "GET", "/faults")).body as { faults: unknown[] }).faults[0]).toMatchObject({ kind: "status", status: 429, retry_after: 5 });
    const limited = await nova(s.cloud, token, "/os-services");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("5");
    const bad = await control(s, "POST", "/faults", { kind: "latency", ms: 10, retry_after: 5, match: {} });
    expect(bad).toEqual({ status: 400, body: { error: "retry_after: only for a status fault" } });
  });

  it("latency, hang, reset and unauthorized from HTTP bodies; DELETE /faults removes them all", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const server = [...s.cloud.state.servers.values()][0]!;
    for (const body of [
      { kind: "latency", ms: 150, match: { service: "compute", method: "GET", path: "^/v2\\.1/servers/[^/]+$" } },
      { kind: "hang", match: { service: "placement" } },
      { kind: "reset", match: { service: "identity", method: "GET" } },
      { kind: "unauthorized", match: { path: "^/v2\\.1/flavors/detail" } },
    ]) {
      expect((await control(s, "POST", "/faults", body)).status, JSON.stringify(body)).toBe(201);
    }
    const kinds = ((await control(s, "GET", "/faults")).body as { faults: { kind: string; remaining: number | null }[] }).faults;
    expect(kinds.map((f) => f.kind)).toEqual(["latency", "hang", "reset", "unauthorized"]);
    // unauthorized hits once unless told otherwise, as in-process.
    expect(kinds[3]!.remaining).toBe(1);

    const t0 = Date.now();
    expect((await nova(s.cloud, token, `/servers/${server.id}`)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    await expect(fetch(`${s.cloud.endpoints.placement}/resource_providers`, { headers: { "X-Auth-Token": token }, signal: AbortSignal.timeout(300) })).rejects.toThrow();
    await expect(fetch(`${s.cloud.url}/projects`, { headers: { "X-Auth-Token": token } })).rejects.toThrow();
    expect((await nova(s.cloud, token, "/flavors/detail")).status).toBe(401);
    expect((await nova(s.cloud, token, "/flavors/detail")).status).toBe(200);

    expect((await control(s, "DELETE", "/faults")).body).toEqual({ removed: 3 });
    expect((await control(s, "GET", "/faults")).body).toEqual({ faults: [] });
    const log = (await control(s, "GET", "/requests")).body as RequestLog;
    expect(log.requests.filter((q) => q.fault).map((q) => q.fault)).toEqual(["hang", "reset", "unauthorized"]);
  });

  it("bad bodies get a 400 naming the field; nothing is injected", async () => {
    const s = await start();
    const cases: [unknown, RegExp][] = [
      [{ match: {} }, /^kind: /],
      [{ kind: "slow", match: {} }, /^kind: /],
      [{ kind: "latency", match: {} }, /^ms: required for a latency fault/],
      [{ kind: "latency", ms: -5, match: {} }, /^ms: /],
      [{ kind: "latency", ms: "3000", match: {} }, /^ms: /],
      [{ kind: "hang", ms: 10, match: {} }, /^ms: only for a latency fault/],
      [{ kind: "reset", status: 503, match: {} }, /^status: only for a status fault/],
      [{ kind: "status", status: 200, match: {} }, /^status: /],
      [{ kind: "status", times: 0, match: {} }, /^times: /],
      [{ kind: "status" }, /^match: /],
      [{ kind: "status", match: { service: "network" } }, /^match\.service: /],
      [{ kind: "status", match: { method: "GET /x" } }, /^match\.method: /],
      [{ kind: "status", match: { path: "([unclosed" } }, /^match\.path: not a valid regular expression/],
      [{ kind: "status", match: {}, extra: 1 }, /extra/],
      [{ kind: "status", match: { host: "compute-1" } }, /host/],
      [[], /^body: /],
      [null, /^body: /],
    ];
    for (const [body, field] of cases) {
      const r = await control(s, "POST", "/faults", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((r.body as { error: string }).error, JSON.stringify(body)).toMatch(field);
    }
    const malformed = await control(s, "POST", "/faults", undefined, { type: "application/json", text: '{"kind": "status", ' });
    expect(malformed).toEqual({ status: 400, body: { error: "body: malformed JSON" } });
    const notJson = await control(s, "POST", "/faults", undefined, { type: "text/plain", text: "kind=status" });
    expect(notJson.status).toBe(415);
    expect((await control(s, "DELETE", "/faults/7")).status).toBe(404);
    expect((await control(s, "DELETE", "/faults/abc")).status).toBe(404);
    expect((await control(s, "GET", "/faults")).body).toEqual({ faults: [] });
    expect(s.cloud.faults.list()).toHaveLength(0);
  });
});

describe("sandbox control API: request log", () => {
  it("lists requests with service, method, path, action, status and time; since a sequence number; counts per service", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const server = [...s.cloud.state.servers.values()][0]!;
    await nova(s.cloud, token, "/os-services");
    const all = (await control(s, "GET", "/requests")).body as RequestLog;
    expect(all.requests.map((q) => `${q.service} ${q.method} ${q.path} ${q.status}`)).toEqual(["identity POST /v3/auth/tokens 201", "compute GET /v2.1/os-services 200"]);
    expect(all.counts).toEqual({ compute: 1, identity: 1, placement: 0, other: 0 });
    expect(all.last).toBe(all.requests[1]!.seq);
    expect(Date.parse(all.requests[0]!.time)).not.toBeNaN();
    // No bodies, no headers: the token request's password and the token stay out.
    const text = JSON.stringify(all);
    expect(text).not.toContain(s.cloud.admin.password);
    expect(text).not.toContain(token);

    await nova(s.cloud, token, `/servers/${server.id}/action`, { method: "POST", body: { lock: null } });
    await fetch(`${s.cloud.endpoints.placement}/resource_providers`, { headers: { "X-Auth-Token": token, "OpenStack-API-Version": "placement 1.10" } });
    const after = (await control(s, "GET", `/requests?since=${all.last}`)).body as RequestLog;
    expect(after.requests.map((q) => [q.service, q.method, q.path, q.action, q.status])).toEqual([
      ["compute", "POST", `/v2.1/servers/${server.id}/action`, "lock", 202],
      ["placement", "GET", "/resource_providers", undefined, 200],
    ]);
    expect(after.counts).toEqual({ compute: 1, identity: 0, placement: 1, other: 0 });
    expect(((await control(s, "GET", `/requests?since=${after.last}`)).body as RequestLog).requests).toEqual([]);
    for (const bad of ["-1", "yesterday", "1.5", ""]) {
      const r = await control(s, "GET", `/requests?since=${encodeURIComponent(bad)}`);
      expect(r.status, bad).toBe(400);
      expect((r.body as { error: string }).error).toMatch(/^since: /);
    }
  });

  it("an action delayed by a latency fault is still carried out after the client went away, as nova-api does, and the log says so", async () => {
    const s = await start();
    const token = await adminToken(s.cloud);
    const cloud = s.cloud;
    const server = [...cloud.state.servers.values()][0]!;
    const source = server.host!;
    cloud.killHost(source);
    expect((await nova(cloud, token, `/os-services/${cloud.state.mustHost(source).serviceUuid}`, { method: "PUT", body: { forced_down: true } })).status).toBe(200);
    expect((await control(s, "POST", "/faults", { kind: "latency", ms: 600, match: { method: "POST", path: "/action$" } })).status).toBe(201);

    // The client (lifeboat killed with SIGKILL) closes its socket while Nova is slow to answer.
    const url = new URL(`${cloud.endpoints.compute}/servers/${server.id}/action`);
    const req = http.request(url, { method: "POST", headers: { "X-Auth-Token": token, "Content-Type": "application/json", "OpenStack-API-Version": "compute 2.53" } });
    req.on("error", () => undefined);
    req.end(JSON.stringify({ evacuate: {} }));
    await waitUntil("the evacuate POST to arrive", () => cloud.requests.some((q) => q.method === "POST" && q.path.endsWith("/action")));
    await new Promise((r) => setTimeout(r, 100));
    req.destroy();

    await waitUntil("the evacuation to start", () => (cloud.settle(), server.evacuationAttempts === 1));
    expect(cloud.state.migrationsOf(server.id)).toHaveLength(1);
    const log = (await control(s, "GET", "/requests")).body as RequestLog;
    const posted = log.requests.filter((q) => q.action === "evacuate");
    expect(posted).toEqual([expect.objectContaining({ method: "POST", status: 200, client_closed: true })]);
  });
});
