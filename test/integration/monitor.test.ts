import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { removeDir, tempDir, lifeboatConfigData, fastSite } from "../kit/config.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { evacuatePosts, finished, metricValue, novaSeesDown, serversOn, siteScenario } from "../kit/site.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli.js");
const run = promisify(execFile);
const HOSTS = ["compute-1", "compute-2", "compute-3"];

let stack: Stack | undefined;
let sandbox: Sandbox | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  await sandbox?.close();
  sandbox = undefined;
  dirs.splice(0).forEach(removeDir);
});

/** `lifeboat check --config FILE [--json]`: exit code, stdout, stderr. */
async function check(file: string, ...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, "check", "--config", file, ...extra], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

function writeConfig(site: Sandbox, overrides: Record<string, unknown> = {}): string {
  const dir = tempDir();
  dirs.push(dir);
  const file = join(dir, "lifeboat.yaml");
  writeFileSync(file, stringify(lifeboatConfigData(overrides, { site, dir })));
  return file;
}

describe("the native monitor", () => {
  it("with no alert at all, a dead host is found by polling os-services and recovered", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 3)) },
      config: { monitor: { enabled: true, interval_seconds: 0.2 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    // Healthy site: polls come and go, nothing starts.
    await new Promise((r) => setTimeout(r, 700));
    expect(cloud.requests.filter((q) => q.method === "GET" && q.path === "/v2.1/os-services" && q.query.binary === "nova-compute").length).toBeGreaterThan(1);
    expect(await s.app.store.listRecoveries({})).toHaveLength(0);

    s.sandbox.failHost("compute-1");
    const d = await finished(s, "compute-1");
    expect(d.trigger).toBe("monitor");
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.map((i) => i.state)).toEqual(["evacuated", "evacuated", "evacuated"]);
    expect(evacuatePosts(cloud)).toHaveLength(3);
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual(["ForceOff"]);
    const metrics = await (await fetch(`${s.app.url}/metrics`)).text();
    expect(metricValue(metrics, "lifeboat_recoveries_started_total", { trigger: "monitor" })).toBe(1);
    expect(metricValue(metrics, "lifeboat_alerts_received_total")).toBe(0);
    expect(await s.app.store.listRecoveries({ host: "compute-2" })).toHaveLength(0);
  }, 60_000);

  it('lifeboat check: "No failed nodes" (exit 0), the failed host (exit 1), Nova unreachable (exit 2)', async () => {
    sandbox = await startSandbox(fastSite({ cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 1)) } }));
    const site = sandbox;
    const file = writeConfig(site, { openstack: { retries: 1 } });

    const healthy = await check(file);
    expect(healthy).toMatchObject({ code: 0, stdout: "No failed nodes\n" });

    site.failHost("compute-2");
    await novaSeesDown(site.cloud, "compute-2");
    const failed = await check(file);
    expect(failed.code, failed.stderr).toBe(1);
    const rows = failed.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^HOST\s+ZONE\s+LAST HEARTBEAT\s+AGE$/);
    expect(rows[1]).toMatch(/^-+\s+-+\s+-+\s+-+$/);
    expect(rows.slice(2)).toHaveLength(1);
    // The age is measured on Nova's clock (the Date of its answer).
    expect(rows[2]).toMatch(/^compute-2\s+nova\s+\d{4}-\d\d-\d\dT\S+\s+\d+s$/);
    const json = await check(file, "--json");
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { failed: { host: string }[] }).failed.map((f) => f.host)).toEqual(["compute-2"]);

    // Nova answering 503 to os-services: exit 2 with the reason, nothing on stdout.
    site.cloud.faults.fail(503, { match: { method: "GET", path: "/v2.1/os-services" } });
    const down = await check(file);
    expect(down.code).toBe(2);
    expect(down.stdout).toBe("");
    expect(down.stderr).toMatch(/^lifeboat: cannot ask Nova: .*(503|Service unavailable)/m);
  }, 60_000);
});
