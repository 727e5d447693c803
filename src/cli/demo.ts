import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RecoveryDetail, Transition } from "../domain/model.js";
import { loadSandbox, type Site } from "./sandbox-package.js";
import type { Lifeboat } from "../app/lifecycle.js";
import { ADMIN_TOKEN, startDemoLifeboat, WEBHOOK_TOKEN } from "./demo-lifeboat.js";
import { errorMessage } from "../util/errors.js";
import { table } from "../util/table.js";
import { alertPayload, bold, cyan, dim, green, red, say, sleep, yellow, tty } from "./demo-output.js";

/**
 * `lifeboat demo` / `npm run demo`: the whole story on embedded defaults, with nothing else
 * installed. A simulated site starts (OpenStack cloud, a Redfish BMC per host, an SMTP
 * catcher: the @lifeboat/sandbox package, which only a development install has), lifeboat
 * starts against it with its real drivers, a compute node dies, an Alertmanager-format
 * ComputeNodeDown arrives on the webhook, and the recovery plays out live. Everything stops
 * at the end.
 */

const FAILED_HOST = "compute-1";

export async function demoCommand(opts: { fast: boolean }): Promise<number> {
  const { defaultScenario, startSandbox } = await loadSandbox("demo");
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-demo-"));
  let site: Site | undefined;
  let app: Lifeboat | undefined;
  try {
    // --- the site ---------------------------------------------------------------------
    const scenario = defaultScenario({ hosts: 4, serversPerHost: 4 });
    // One instance's first evacuation fails (no valid host on the first try): lifeboat re-issues it.
    const flaky = scenario.servers.find((s) => s.host === FAILED_HOST && !s.status && !s.metadata);
    if (flaky) flaky.evacuation = { failTimes: 1 };
    site = await startSandbox({ cloud: { scenario, evacuationDurationMs: opts.fast ? 600 : 1500 }, powerDelayMs: opts.fast ? 300 : 800 });
    const view = site.view();
    say(bold("lifeboat demo") + dim("  — high availability for OpenStack compute nodes"));
    say();
    say("A simulated site is running on this machine:");
    say(`  OpenStack (Keystone, Nova, Placement)  ${dim(site.cloud.url)}`);
    say(`  a Redfish BMC per compute host         ${dim(site.redfish.url)}`);
    say(`  an SMTP server catching the mail       ${dim(`127.0.0.1:${site.smtp.port}`)}`);
    say();
    say(
      table(
        ["HOST", "POWER", "NOVA-COMPUTE", "INSTANCES"],
        view.hosts.map((h) => [h.host, h.power, h.service, view.servers.filter((s) => s.host === h.host).map((s) => s.name).join(", ") || dim("(spare)")]),
      ),
    );
    say();

    // --- lifeboat ---------------------------------------------------------------------
    const { lifeboat, config } = await startDemoLifeboat(site, dir, opts.fast ? 2 : 5);
    app = lifeboat;
    const url = lifeboat.url;
    say(`lifeboat is running: webhook ${cyan(`${url}/api/v1/alerts`)}, metrics ${cyan(`${url}/metrics`)}`);
    say(`  the console: ${bold(cyan(`${url}/console`))}  ${dim(`(log in with the admin token ${ADMIN_TOKEN}; watch the recovery live there)`)}`);
    const gates = [...config.gates.confirmations.map((g) => g.driver), "capacity", "storm guard", "silences, pause, cooldown…"];
    say(dim(`  fencing: Redfish, one BMC per host · gates: ${gates.join(", ")} · grace ${config.recovery.grace_seconds}s`));
    say();

    // --- a node dies ------------------------------------------------------------------
    const victims = view.servers.filter((s) => s.host === FAILED_HOST);
    say(bold(red(`✖ ${FAILED_HOST} dies`)) + ` (${victims.length} instances on it). Its BMC still says "On"; nova-compute stops heartbeating.`);
    site.failHost(FAILED_HOST);
    const waitSeconds = 7;
    for (let i = waitSeconds; i > 0; i--) {
      if (tty) process.stdout.write(`\r  ${dim(`Prometheus' rule waits for Nova to see it down too… ${i}s `)}`);
      await sleep(1000);
    }
    if (tty) process.stdout.write("\r\u001b[2K");
    say(`  Prometheus fires ${bold("ComputeNodeDown")}; Alertmanager posts it to lifeboat (and, like an HA pair, posts it again):`);

    const payload = alertPayload(FAILED_HOST);
    for (const name of ["alertmanager-1", "alertmanager-2"]) {
      const res = await fetch(`${url}/api/v1/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${WEBHOOK_TOKEN}`, "user-agent": "Alertmanager/0.25.0" },
        body: JSON.stringify({ ...payload, externalURL: `http://${name}:9093` }),
      });
      const body = (await res.json()) as { duplicates?: number };
      say(`  ${name} → ${res.status === 202 ? green(String(res.status)) : red(String(res.status))} ${dim(body.duplicates ? "(duplicate delivery: same incident, same recovery)" : "(journaled before the answer)")}`);
    }
    say();

    // --- the recovery, live -----------------------------------------------------------
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      return (await res.json()) as T;
    };
    let id: string | undefined;
    for (let i = 0; i < 50 && !id; i++) {
      id = (await api<{ recoveries: { id: string }[] }>(`/api/v1/recoveries?host=${FAILED_HOST}`)).recoveries[0]?.id;
      if (!id) await sleep(100);
    }
    if (!id) throw new Error("no recovery was started");
    say(bold(`Recovery ${id}`));
    let shown = 0;
    let decisionsShown = 0;
    let progress = "";
    let lastBar = "";
    let detail: RecoveryDetail | undefined;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      detail = await api<RecoveryDetail>(`/api/v1/recoveries/${id}`);
      const newDecisions = detail.decisions.slice(decisionsShown);
      for (const t of detail.timeline.slice(shown)) {
        if (progress) {
          process.stdout.write("\n");
          progress = "";
        }
        if (t.from === "validating" && newDecisions.length) {
          for (const d of detail.decisions.slice(decisionsShown)) say(`      ${d.result === "pass" ? green("✓") : d.result === "warn" ? yellow("!") : red("✗")} ${d.gate.padEnd(13)} ${dim(d.reason)}`);
          decisionsShown = detail.decisions.length;
        }
        say(stageLine(t));
      }
      shown = detail.timeline.length;
      if (detail.state === "evacuating" && detail.instances.length) {
        const bar = progressBar(detail);
        if (bar !== lastBar) {
          process.stdout.write(tty ? `\r${bar}` : `${bar}\n`);
          lastBar = bar;
          progress = tty ? bar : "";
        }
      }
      if (["completed", "partial", "failed", "aborted"].includes(detail.state)) break;
      await sleep(150);
    }
    if (progress) process.stdout.write("\n");
    if (!detail) throw new Error("recovery not found");
    // The mails go out in the background, after the recovery ended: wait for them to be delivered.
    for (let i = 0; i < 100 && (detail.delivery?.pending ?? 0) > 0; i++) {
      await sleep(100);
      detail = await api<RecoveryDetail>(`/api/v1/recoveries/${id}`);
    }
    await sleep(300);

    // --- summary ----------------------------------------------------------------------
    say();
    const ok = detail.state === "completed";
    say(bold(ok ? green(`✔ ${detail.state}`) : red(`✖ ${detail.state}`)) + `  ${detail.reason}  ${dim(`(${seconds(detail.timeline[0]!.at, detail.timeline.at(-1)!.at)} from the first alert)`)}`);
    say();
    say(bold("Instances"));
    const after = site.view();
    say(
      table(
        ["INSTANCE", "PROJECT", "WAS", "OUTCOME", "NOW ON", "TRIES"],
        detail.instances.map((i) => {
          const now = after.servers.find((s) => s.id === i.instanceId);
          return [i.name, now?.project ?? i.projectId, i.originalStatus, i.state === "evacuated" ? green("evacuated") : i.state === "failed" ? red(i.state) : yellow(i.state), `${i.targetHost ?? "-"} ${dim(now ? `(${now.status})` : "")}`, String(i.attempts)];
        }),
      ),
    );
    say();
    say(bold(`Emails sent (${site.smtp.messages.length})`));
    for (const m of site.smtp.messages) say(`  ${cyan(m.to.join(", ").padEnd(24))} ${m.subject}`);
    say();
    say(bold("Nova now"));
    say(
      table(
        ["HOST", "POWER", "NOVA-COMPUTE", "INSTANCES"],
        after.hosts.map((h) => [h.host, h.power, `${h.service}${h.forcedDown ? ", forced down" : ""}${h.disabled ? ", disabled" : ""}`, String(after.servers.filter((s) => s.host === h.host).length)]),
      ),
    );
    say();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const pick = (name: string): string[] => metrics.split("\n").filter((l) => l.startsWith(name) && !l.endsWith(" 0"));
    say(bold("A few of lifeboat's metrics") + dim(` (${url}/metrics)`));
    for (const l of [...pick("lifeboat_recoveries_total"), ...pick("lifeboat_instances_evacuated_total"), ...pick("lifeboat_fence_operations_total"), ...pick("lifeboat_notifications_total")]) say(`  ${dim(l)}`);
    say();
    say(bold("Where to look on a real deployment"));
    const looks: [string, string][] = [
      ["lifeboat status", "leader, pause, open recoveries"],
      ["/console", "the console in a browser: recoveries live, approve, pause, release"],
      [`lifeboat show ${id}`, "this timeline, gate decisions, instances, emails"],
      [`GET /api/v1/recoveries/${id}`, "the same as JSON;  GET /metrics for Prometheus/Grafana"],
      [`lifeboat release ${FAILED_HOST}`, "once the host is repaired: power on, un-force, enable"],
    ];
    const width = Math.max(...looks.map(([what]) => what.length));
    for (const [what, why] of looks) say(`  ${what.padEnd(width)}   ${why}`);
    if (interactive()) {
      say();
      say(`The console stays open at ${bold(cyan(`${url}/console`))} (admin token ${bold(ADMIN_TOKEN)}): this recovery's timeline, gate decisions, fence, instances and emails.`);
      say(`  Press ${bold("Enter")} or ${bold("Ctrl-C")} to end the demo.`);
      await untilTheUserEnds();
    }
    say(dim(`  This demo's journal (SQLite) was ${join(dir, "lifeboat.db")}; it is removed now.`));
    return ok ? 0 : 1;
  } catch (err) {
    say(red(`demo failed: ${errorMessage(err)}`));
    return 1;
  } finally {
    await app?.stop().catch(() => undefined);
    await site?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Someone at a terminal can look at the console before the demo ends; a pipe or a test cannot. */
function interactive(): boolean {
  return process.stdout.isTTY === true && process.stdin.isTTY === true;
}

/** Resolves on Enter (a line on stdin) or Ctrl-C, then lets go of stdin so the process can end. */
function untilTheUserEnds(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdin.off("data", done);
      process.off("SIGINT", done);
      process.stdin.pause();
      process.stdin.unref();
      resolve();
    };
    process.stdin.on("data", done);
    process.once("SIGINT", done);
    process.stdin.resume();
  });
}

function stageLine(t: Transition): string {
  const icon: Record<string, string> = {
    pending: "⏳",
    validating: "🔎",
    blocked: "⛔",
    fencing: "⚡",
    isolating: "🚧",
    evacuating: "🚑",
    notifying: "✉ ",
    completed: "✅",
    partial: "⚠ ",
    failed: "❌",
    aborted: "↩ ",
  };
  const time = t.at.slice(11, 23);
  return `  ${dim(time)} ${icon[t.to] ?? "•"} ${bold(t.to.padEnd(10))} ${t.reason}`;
}

function progressBar(d: RecoveryDetail): string {
  const selected = d.instances.filter((i) => !["skipped", "unprotected"].includes(i.state));
  const done = selected.filter((i) => i.state === "evacuated").length;
  const failed = selected.filter((i) => i.state === "failed").length;
  const retrying = selected.filter((i) => i.attempts > 1 && i.state !== "evacuated").length;
  const width = 30;
  const filled = selected.length ? Math.round(((done + failed) / selected.length) * width) : width;
  return `      [${green("█".repeat(filled))}${dim("░".repeat(width - filled))}] ${done}/${selected.length} evacuated${failed ? red(`, ${failed} failed`) : ""}${retrying ? yellow(`, ${retrying} re-issued`) : ""}   `;
}

function seconds(a: string, b: string): string {
  return `${((Date.parse(b) - Date.parse(a)) / 1000).toFixed(1)} s`;
}
