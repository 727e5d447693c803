import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { configRows } from "../../src/doctor/config-check.js";
import { runDoctor } from "../../src/doctor/doctor.js";
import { prometheusCheck } from "../../src/doctor/monitoring.js";
import { raceDeadline, runChecks } from "../../src/doctor/runner.js";
import { formatDoctorReport } from "../../src/doctor/table.js";
import type { DoctorCheck } from "../../src/doctor/types.js";
import { Secret } from "../../src/util/secret.js";
import { runDoctorCli, writeConfig } from "./support.js";
import { tempDir, lifeboatConfig } from "../kit/config.js";

const never = (): Promise<never> => new Promise(() => undefined);

describe("check runner", () => {
  it("runs checks at once, keeps their order, bounds each one even when it ignores its signal", async () => {
    let aborted: unknown;
    const checks: DoctorCheck[] = [
      {
        check: "slow",
        target: "a",
        timeoutMs: 300,
        run: (signal) => {
          signal.addEventListener("abort", () => {
            aborted = signal.reason;
          });
          return never();
        },
      },
      { check: "quick", target: "b", timeoutMs: 5000, run: () => Promise.resolve([{ check: "quick", target: "b", result: "ok", detail: "fine" }]) },
      { check: "broken", target: "c", timeoutMs: 5000, run: () => Promise.reject(new Error("line one\nline two")) },
    ];
    const started = Date.now();
    const r = await runChecks(checks);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.rows.map(({ check, target, result, detail }) => ({ check, target, result, detail }))).toEqual([
      { check: "slow", target: "a", result: "fail", detail: "no answer within 0.3 s" },
      { check: "quick", target: "b", result: "ok", detail: "fine" },
      { check: "broken", target: "c", result: "fail", detail: "line one line two" },
    ]);
    expect(aborted).toBeInstanceOf(Error);
    expect(r.counts).toEqual({ ok: 1, warn: 0, fail: 2, skip: 0 });
    expect(r.ok).toBe(false);
  });

  it("scrubs secrets from targets and details", async () => {
    const r = await runChecks(
      [{ check: "leaky", target: "user:hunter22@x", timeoutMs: 1000, run: () => Promise.resolve([{ check: "leaky", target: "user:hunter22@x", result: "warn", detail: "said hunter22 twice: hunter22" }]) }],
      { secrets: [new Secret("hunter22")] },
    );
    expect(r.rows[0]).toMatchObject({ target: "user:[redacted]@x", detail: "said [redacted] twice: [redacted]" });
    expect(r.ok).toBe(true);
  });

  it("raceDeadline passes the parent's abort on", async () => {
    const parent = new AbortController();
    const p = raceDeadline(() => never(), 10_000, parent.signal);
    parent.abort(new Error("stop now"));
    await expect(p).rejects.toThrow("stop now");
  });

  it("the table: aligned columns, upper-case FAIL and WARN, a closing count", async () => {
    const r = await runChecks([
      { check: "a", target: "t1", timeoutMs: 1000, run: () => Promise.resolve([{ check: "a", target: "t1", result: "ok", detail: "d1" }]) },
      { check: "longer", target: "t2", timeoutMs: 1000, run: () => Promise.resolve([{ check: "longer", target: "t2", result: "warn", detail: "d2" }, { check: "longer", target: "t3", result: "skip", detail: "d3" }]) },
    ]);
    expect(formatDoctorReport(r)).toBe(
      ["CHECK   TARGET  RESULT  DETAIL", "------  ------  ------  ------", "a       t1      ok      d1", "longer  t2      WARN    d2", "longer  t3      skip    d3", "", "3 check(s): 1 ok, 1 warning(s), 0 failed, 1 skipped", ""].join("\n"),
    );
  });
});

describe("config rows", () => {
  it("every problem with its path, and nothing else is asked", async () => {
    const dir = tempDir();
    const file = writeConfig(dir, { server: { listen: "nowhere", auth: "none" }, fencing: { hosts: { "compute-1": { driver: "ipmi" } } }, bogus: 1 });
    const r = await runDoctor(file, { env: {} });
    expect(r.rows.every((x) => x.check === "config" && x.result === "fail")).toBe(true);
    const paths = r.rows.map((x) => x.target);
    expect(paths).toEqual(expect.arrayContaining(["server.listen", "server.admin_token", "bogus", "fencing.hosts.compute-1.address", "fencing.hosts.compute-1.username"]));
    const out = await runDoctorCli(file);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^config\s+server\.listen\s+FAIL\s+expected HOST:PORT/m);
  });

  it("an unreadable file is one failed row", async () => {
    const r = await runDoctor("/nonexistent/lifeboat.yaml", { env: {} });
    expect(r.rows).toEqual([{ check: "config", target: "(file)", result: "fail", detail: "cannot read /nonexistent/lifeboat.yaml: ENOENT" }]);
  });

  it("a valid config that cannot recover anything, or runs dry, says so", () => {
    const dir = tempDir();
    const file = writeConfig(dir, {
      server: { listen: "127.0.0.1:0", auth: "none", admin_token: "t0ken-admin-0123456789" },
      recovery: { dry_run: true },
    });
    const { config, rows } = configRows(file, {});
    expect(config).not.toBeNull();
    expect(rows.map((x) => [x.target, x.result])).toEqual([
      [file, "ok"],
      ["fencing.hosts", "fail"],
      ["recovery.dry_run", "warn"],
      ["gates.silences", "warn"],
      ["server.auth", "warn"],
      ["notifications", "warn"],
    ]);
  });
});

describe("Prometheus check", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it("without buildinfo (an API proxy), a trivial query proves the API", async () => {
    const asked: string[] = [];
    server = createServer((req, res) => {
      asked.push(req.url ?? "");
      res.setHeader("Content-Type", "application/json");
      if (req.url?.startsWith("/api/v1/query?query=1")) res.end(JSON.stringify({ status: "success", data: { resultType: "scalar", result: [1, "1"] } }));
      else {
        res.statusCode = 404;
        res.end("{}");
      }
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await runChecks([prometheusCheck(lifeboatConfig({ prometheus: { url } }))!]);
    expect(r.rows[0]).toMatchObject({ check: "prometheus", result: "ok", detail: "query API answers (no buildinfo: HTTP 404)" });
    expect(asked).toEqual(["/api/v1/status/buildinfo", "/api/v1/query?query=1"]);
  });
});
