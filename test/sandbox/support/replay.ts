import { expect } from "vitest";
import type { SandboxCloud } from "../../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../../packages/sandbox/src/cloud-scenario.js";
import { call, headerProblems, loadFixture, shapeDiff, shapeOf, type Fixture, type RawAnswer } from "./fixtures.js";

/**
 * The cloud the fixtures were captured on, with the same ids: admin project and user,
 * compute-1..3 (service and resource provider uuids), servers fx-1…fx-5 on compute-2.
 */
export const FIXTURE_IDS = {
  project: "2b0a5cf20f6746688419d417e63fa158",
  user: "d9db141056094f61b37eeaff924d70aa",
  compute1: { service: "3541a34e-4006-4f1c-a068-278ccdce9af6", node: "25248817-576b-4b99-9267-720e6e446cc6" },
  compute2: { service: "be388782-75e6-4d3f-a4f1-92491ea1037c", node: "adc5a411-b181-4b52-8a68-f335aa8832da" },
  compute3: { service: "f0f0a1c7-1452-43e4-affb-77c03dbc5bb4", node: "8c6c3c5f-a872-4bad-951b-e3e23478d683" },
  fx1: "45d95879-7393-45ec-9a66-ac88468da254",
  fx2: "9334234b-8f96-4479-966f-0997150ec372",
  fx3: "11cb995c-3ebf-4487-9fd1-febfc2c68e55",
  fx4: "47fdf90d-5b07-4baf-9e50-6e9896a83891",
  fx5: "e10d7fea-d6be-45dc-a925-a074ff537a57",
} as const;

export const FIXTURE_PASSWORD = "fixture-admin-secret";

export function fixtureScenario(): SandboxScenario {
  const f = FIXTURE_IDS;
  return {
    projects: [{ id: f.project, name: "admin" }, { name: "service" }],
    users: [{ id: f.user, name: "admin", password: FIXTURE_PASSWORD, roles: [{ project: "admin", role: "admin" }] }],
    flavors: [{ id: "41ff331d-1433-413d-9118-83fcda98616b", name: "m1.fake", vcpus: 1, ram: 64, disk: 1 }],
    hosts: [
      { name: "compute-1", serviceUuid: f.compute1.service, nodeUuid: f.compute1.node, vcpus: 1000, memoryMb: 800000, diskGb: 600000, cpuAllocationRatio: 16, ramAllocationRatio: 16 },
      { name: "compute-2", serviceUuid: f.compute2.service, nodeUuid: f.compute2.node, vcpus: 1000, memoryMb: 800000, diskGb: 600000, cpuAllocationRatio: 16, ramAllocationRatio: 16 },
      { name: "compute-3", serviceUuid: f.compute3.service, nodeUuid: f.compute3.node, vcpus: 1000, memoryMb: 800000, diskGb: 600000, cpuAllocationRatio: 16, ramAllocationRatio: 16 },
    ],
    servers: [
      { id: f.fx1, name: "fx-1", host: "compute-2", project: "admin", user: "admin", flavor: "m1.fake", metadata: { HA_Enabled: "True", lifeboat_priority: "10" } },
      { id: f.fx2, name: "fx-2", host: "compute-2", project: "admin", user: "admin", flavor: "m1.fake", status: "SHUTOFF" },
      { id: f.fx3, name: "fx-3", host: "compute-2", project: "admin", user: "admin", flavor: "m1.fake" },
      { id: f.fx4, name: "fx-4", host: "compute-2", project: "admin", user: "admin", flavor: "m1.fake" },
      { id: f.fx5, name: "fx-5", host: "compute-2", project: "admin", user: "admin", flavor: "m1.fake" },
      { name: "other-1", host: "compute-1", project: "admin", user: "admin", flavor: "m1.fake" },
    ],
  };
}

/** The fixture's request, sent to the simulated cloud (host rewritten, real token and password). */
export async function replay(cloud: SandboxCloud, fixture: Fixture | string, token: string | undefined): Promise<RawAnswer> {
  const fx = typeof fixture === "string" ? loadFixture(fixture) : fixture;
  const url = fx.request.url
    .replace("http://CLOUD:8774", `${cloud.baseUrl}/compute`)
    .replace("http://CLOUD:5000", `${cloud.baseUrl}/identity`)
    .replace("http://CLOUD:8778", `${cloud.baseUrl}/placement`);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(fx.request.headers)) {
    if (k === "X-Auth-Token") {
      if (token) headers[k] = v === "REDACTED-TOKEN" ? token : v;
    } else headers[k] = v;
  }
  const body = fx.request.body === null ? undefined : JSON.parse(JSON.stringify(fx.request.body).replace("REDACTED-PASSWORD", FIXTURE_PASSWORD)) as unknown;
  return call(url, { method: fx.request.method, headers, body });
}

/**
 * Replay a fixture and check the answer against it: same status, same body shape (keys and
 * value types, recursively), the fixture's headers present (content type and microversion
 * with the same value), and for error answers the very same body (the service's message).
 */
export async function expectLikeFixture(cloud: SandboxCloud, name: string, token: string | undefined): Promise<RawAnswer> {
  const fx = loadFixture(name);
  const got = await replay(cloud, fx, token);
  expect({ fixture: name, status: got.status }).toEqual({ fixture: name, status: fx.response.status });
  expect({ fixture: name, shape: shapeDiff(shapeOf(got.body), shapeOf(fx.response.body)) }).toEqual({ fixture: name, shape: [] });
  expect({ fixture: name, headers: headerProblems(got.headers, fx.response.headers) }).toEqual({ fixture: name, headers: [] });
  if (fx.response.status >= 400) expect(got.body).toEqual(fx.response.body);
  return got;
}
