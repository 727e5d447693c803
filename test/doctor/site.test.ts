import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDoctor } from "../../src/doctor/doctor.js";
import { formatDoctorReport } from "../../src/doctor/table.js";
import { SANDBOX_BMC, startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { startAlertmanager, type AlertmanagerServer } from "../support/alertmanager.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { closedPort, rowOf, rowsOf, runDoctorCli, silentServer, writeSiteConfig } from "./support.js";
import { tempDir } from "../kit/config.js";

/**
 * `lifeboat doctor` against the simulated site (Keystone, Nova, Placement, one Redfish BMC
 * per host, an SMTP catcher) and a real Alertmanager and Prometheus: all green, then one
 * fault at a time — the right rows fail and the command exits 1.
 */
let sandbox: Sandbox;
let am: AlertmanagerServer;
let prom: PrometheusServer;
let monitoring: Record<string, unknown>;

beforeAll(async () => {
  sandbox = await startSandbox();
  [am, prom] = await Promise.all([startAlertmanager({ webhookUrl: "http://127.0.0.1:9/api/v1/alerts" }), startPrometheus({})]);
  monitoring = { alertmanager: { url: am.url }, prometheus: { url: prom.url } };
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([sandbox?.close(), am?.stop(), prom?.stop()]);
});

const secrets = (): string[] => [sandbox.cloud.admin.password, SANDBOX_BMC.password];

describe("lifeboat doctor on a healthy site", () => {
  it("is green on every row, reads back who lifeboat is, and changes nothing", async () => {
    const dir = tempDir();
    const r = await runDoctor(writeSiteConfig(sandbox, dir, monitoring), { env: {} });
    expect(r.rows.filter((x) => x.result !== "ok"), formatDoctorReport(r)).toEqual([]);
    expect(r.ok).toBe(true);

    expect(rowOf(r, "config").detail).toMatch(/4 host\(s\) with fencing/);
    const ks = rowOf(r, "keystone");
    expect(ks.target).toBe(sandbox.cloud.url);
    expect(ks.detail).toMatch(new RegExp(`as ${sandbox.cloud.admin.username} in project ${sandbox.cloud.admin.project_name}, roles .*admin`));
    const nova = rowOf(r, "nova");
    expect(nova.target).toBe(sandbox.cloud.endpoints.compute);
    // The sandbox speaks up to 2.93: lifeboat pins its highest candidate.
    expect(nova.detail).toMatch(/microversion 2\.73 \(cloud supports 2\.1–2\.93\); 4 nova-compute service\(s\): 4 up, 0 down, 0 disabled/);
    expect(rowOf(r, "coverage").detail).toBe("every nova-compute host (4) has fencing");
    expect(rowOf(r, "placement").detail).toMatch(/^microversion 1\.14: 4 root resource provider\(s\)/);
    const fencing = rowsOf(r, "fencing");
    expect(fencing.map((f) => f.target.split(" ")[0])).toEqual(sandbox.hosts);
    for (const f of fencing) expect(f.detail).toMatch(/^power on /);
    expect(rowOf(r, "alertmanager").detail).toMatch(/^Alertmanager \d+\.\d+\.\d+, clustering disabled/);
    expect(rowOf(r, "prometheus").detail).toMatch(/^Prometheus \d+\.\d+\.\d+/);
    expect(rowOf(r, "smtp").detail).toBe("connected, EHLO, no encryption, no AUTH configured; no mail sent");
    expect(rowOf(r, "store").detail).toMatch(/^not created yet; .* is writable/);

    // Asked, not acted upon: no mail, no power change, nothing written to Nova.
    expect(sandbox.smtp.messages).toHaveLength(0);
    for (const h of sandbox.hosts) expect(sandbox.redfish.system(h).resets).toEqual([]);
    expect(sandbox.cloud.requests.filter((q) => q.method !== "GET" && !(q.service === "identity" && q.path.endsWith("/auth/tokens")))).toEqual([]);
  }, 60_000);

  it("prints one table and exits 0 from the command line", async () => {
    const dir = tempDir();
    const out = await runDoctorCli(writeSiteConfig(sandbox, dir, monitoring));
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const lines = out.stdout.split("\n");
    expect(lines[0]).toMatch(/^CHECK\s+TARGET\s+RESULT\s+DETAIL$/);
    expect(out.stdout).toMatch(/^keystone\s+http:\/\/127\.0\.0\.1:\d+\/identity\/v3\s+ok\s+authenticated as admin/m);
    expect(out.stdout).toMatch(/\d+ check\(s\): \d+ ok, 0 warning\(s\), 0 failed\n$/);
    for (const s of secrets()) expect(out.stdout + out.stderr).not.toContain(s);
  }, 60_000);
});

describe("lifeboat doctor with a fault", () => {
  it("wrong BMC password: every fencing row fails, the rest stays green, exit 1, no password printed", async () => {
    const dir = tempDir();
    const file = writeSiteConfig(sandbox, dir, { fencing: { defaults: { redfish: { password: "not-the-bmc-password" } } } });
    const r = await runDoctor(file, { env: {} });
    const fencing = rowsOf(r, "fencing");
    expect(fencing).toHaveLength(4);
    for (const f of fencing) {
      expect(f.result).toBe("fail");
      expect(f.detail).toMatch(/401|unauthori[sz]ed|credentials/i);
    }
    expect(r.rows.filter((x) => x.result === "fail").map((x) => x.check)).toEqual(["fencing", "fencing", "fencing", "fencing"]);
    expect(r.ok).toBe(false);
    const out = await runDoctorCli(file);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^fencing\s+compute-1 \S+\s+FAIL\s/m);
    expect(out.stdout).toContain("4 failed — a recovery would not get through");
    for (const s of ["not-the-bmc-password", ...secrets()]) expect(out.stdout + out.stderr).not.toContain(s);
  }, 60_000);

  it("Keystone down (503): keystone fails, Nova and Placement are skipped, the BMCs still answer", async () => {
    const fault = sandbox.cloud.faults.fail(503, { match: { service: "identity" } });
    try {
      const r = await runDoctor(writeSiteConfig(sandbox, tempDir()), { env: {} });
      const ks = rowOf(r, "keystone");
      expect(ks.result).toBe("fail");
      expect(ks.detail).toMatch(/503/);
      expect(rowOf(r, "nova")).toMatchObject({ result: "skip", detail: "needs Keystone" });
      expect(rowOf(r, "placement")).toMatchObject({ result: "skip" });
      expect(rowsOf(r, "fencing").every((f) => f.result === "ok")).toBe(true);
      expect(r.ok).toBe(false);
      // Asked once: doctor reports the failure, it does not retry it.
      expect(fault.hits()).toBe(1);
    } finally {
      fault.remove();
    }
  }, 60_000);

  it("Keystone refusing the password: the row names the credentials' source once", async () => {
    const r = await runDoctor(writeSiteConfig(sandbox, tempDir(), { openstack: { auth: { password: "not-the-keystone-password" } } }), { env: {} });
    const ks = rowOf(r, "keystone");
    expect(ks.result).toBe("fail");
    expect(ks.detail).toMatch(/^HTTP 401: /);
    expect(ks.detail.match(/credentials from openstack\.auth in lifeboat's config/g)).toHaveLength(1);
    expect(ks.detail).not.toMatch(/\) \(/);
    expect(ks.detail).not.toContain("not-the-keystone-password");
  }, 60_000);

  it("Keystone hanging: the row fails after openstack.timeout_seconds, doctor does not hang", async () => {
    const fault = sandbox.cloud.faults.hang({ match: { service: "identity" } });
    try {
      const started = Date.now();
      const r = await runDoctor(writeSiteConfig(sandbox, tempDir(), { openstack: { timeout_seconds: 1 } }), { env: {} });
      const elapsed = Date.now() - started;
      expect(rowOf(r, "keystone")).toMatchObject({ result: "fail" });
      expect(rowOf(r, "keystone").detail).toMatch(/timed out after 1000 ms/);
      expect(elapsed).toBeLessThan(15_000);
    } finally {
      fault.remove();
    }
  }, 60_000);

  it("a dead BMC (accepts, never answers) fails its host's row within its timeout; the other hosts answer", async () => {
    const dead = await silentServer();
    try {
      const file = writeSiteConfig(sandbox, tempDir(), {
        fencing: { hosts: { "compute-2": { driver: "redfish", address: dead.url, system_id: "/redfish/v1/Systems/compute-2", timeout_seconds: 2, command_timeout_seconds: 1, power_timeout_seconds: 1, retries: 0 } } },
      });
      const started = Date.now();
      const r = await runDoctor(file, { env: {} });
      const elapsed = Date.now() - started;
      const rows = rowsOf(r, "fencing");
      expect(rows.filter((f) => f.result === "fail").map((f) => f.target.split(" ")[0])).toEqual(["compute-2"]);
      expect(rows.filter((f) => f.result === "ok")).toHaveLength(3);
      expect(dead.connections()).toBeGreaterThan(0);
      expect(elapsed).toBeLessThan(20_000);
      expect(r.ok).toBe(false);
    } finally {
      await dead.close();
    }
  }, 60_000);

  it("SMTP down (connection refused) and SMTP hanging: the smtp row fails, bounded", async () => {
    const refused = await runDoctor(writeSiteConfig(sandbox, tempDir(), { notifications: { smtp: { port: await closedPort() } } }), { env: {} });
    expect(rowOf(refused, "smtp")).toMatchObject({ result: "fail" });
    expect(rowOf(refused, "smtp").detail).toMatch(/ECONNREFUSED/);
    expect(refused.ok).toBe(false);

    const mute = await silentServer();
    try {
      const started = Date.now();
      const hung = await runDoctor(writeSiteConfig(sandbox, tempDir(), { notifications: { smtp: { port: mute.port, timeout_seconds: 1 } } }), { env: {} });
      expect(rowOf(hung, "smtp")).toMatchObject({ result: "fail" });
      expect(rowOf(hung, "smtp").detail).toMatch(/greeting never received|timeout|no answer/i);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await mute.close();
    }
  }, 60_000);

  it("Alertmanager URL dead and Prometheus URL dead: their rows fail", async () => {
    const port = await closedPort();
    const r = await runDoctor(
      writeSiteConfig(sandbox, tempDir(), { alertmanager: { url: `http://127.0.0.1:${port}` }, prometheus: { url: `http://127.0.0.1:${port}/` } }),
      { env: {} },
    );
    expect(rowOf(r, "alertmanager")).toMatchObject({ result: "fail", target: `http://127.0.0.1:${port}` });
    expect(rowOf(r, "alertmanager").detail).toMatch(/ECONNREFUSED/);
    expect(rowOf(r, "prometheus")).toMatchObject({ result: "fail" });
    expect(r.rows.filter((x) => x.result === "fail").map((x) => x.check)).toEqual(["alertmanager", "prometheus"]);
    const out = await runDoctorCli(writeSiteConfig(sandbox, tempDir(), { alertmanager: { url: `http://127.0.0.1:${port}` } }));
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^alertmanager\s+http:\/\/127\.0\.0\.1:\d+\s+FAIL\s/m);
  }, 60_000);

  it("an Alertmanager URL that is not Alertmanager (Prometheus answers 404) fails with what it answered", async () => {
    const r = await runDoctor(writeSiteConfig(sandbox, tempDir(), { alertmanager: { url: prom.url } }), { env: {} });
    expect(rowOf(r, "alertmanager")).toMatchObject({ result: "fail" });
    expect(rowOf(r, "alertmanager").detail).toMatch(/HTTP 404.*not Alertmanager's API v2/);
  }, 60_000);

  it("Nova hosts without fencing and fenced names Nova does not know are warnings on the coverage row", async () => {
    const dir = tempDir();
    const file = writeSiteConfig(sandbox, dir, {
      fencing: { hosts: { "compute-3": null, "compute-4": null, "compute-99": { driver: "redfish", address: sandbox.redfish.url, system_id: "/redfish/v1/Systems/compute-1" } } },
    });
    // deepMerge keeps null: drop those hosts from the written file.
    const { readFileSync, writeFileSync } = await import("node:fs");
    writeFileSync(file, readFileSync(file, "utf8").replace(/^ {4}compute-[34]: null\n/gm, ""));
    const r = await runDoctor(file, { env: {} });
    const cov = rowOf(r, "coverage");
    expect(cov.result).toBe("warn");
    expect(cov.detail).toBe("no fencing for compute-3, compute-4: their recoveries would stop before evacuating; not nova-compute hosts in Nova: compute-99 (names must match Nova's service host)");
    expect(r.ok).toBe(true);
  }, 60_000);
});
