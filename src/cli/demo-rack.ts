import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Recovery, RecoveryDetail, StormStatus } from "../domain/model.js";
import { errorMessage } from "../util/errors.js";
import { table } from "../util/table.js";
import { alertPayload, bold, cyan, dim, green, red, say, sleep, tty, yellow } from "./demo-output.js";
import { loadSandbox, type Site } from "./sandbox-package.js";
import type { Lifeboat } from "../app/lifecycle.js";
import { ADMIN_TOKEN, startDemoLifeboat, WEBHOOK_TOKEN } from "./demo-lifeboat.js";

/**
 * `lifeboat demo --scenario rack`: a whole rack loses power. A simulated site of hosts in
 * racks and availability zones starts, lifeboat with it; one rack goes dark at once, an
 * alert arrives for each of its hosts, and the storm guard lets the first ones through and
 * holds the others until an operator approves them all with one command. Everything stops
 * at the end.
 */

const RACK = "rack-02";
const TERMINAL = new Set(["completed", "partial", "failed", "aborted"]);

export async function rackDemoCommand(opts: { fast: boolean }): Promise<number> {
  const { rackScenario, startSandbox } = await loadSandbox("demo");
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-demo-"));
  let site: Site | undefined;
  let app: Lifeboat | undefined;
  try {
    // --- the site ---------------------------------------------------------------------
    const scenario = rackScenario({ hosts: 24, zones: 2, racks: 4, serversPerHost: 1, loadedRack: RACK, rackServersPerHost: 4 });
    site = await startSandbox({ cloud: { scenario, evacuationDurationMs: opts.fast ? 600 : 1500 }, powerDelayMs: opts.fast ? 300 : 800 });
    const view = site.view();
    say(bold("lifeboat demo: a rack fails") + dim("  — high availability for OpenStack compute nodes"));
    say();
    say(`A simulated site is running on this machine: ${view.hosts.length} compute hosts in ${site.racks.size} racks and ${new Set(view.hosts.map((h) => h.zone)).size} availability zones.`);
    say(`  OpenStack (Keystone, Nova, Placement)  ${dim(site.cloud.url)}`);
    say(`  a Redfish BMC per compute host         ${dim(site.redfish.url)}`);
    say(`  an SMTP server catching the mail       ${dim(`127.0.0.1:${site.smtp.port}`)}`);
    say();
    say(
      table(
        ["RACK", "ZONE", "HOSTS", "INSTANCES"],
        [...site.racks].map(([rack, hosts]) => {
          const rows = view.hosts.filter((h) => hosts.includes(h.host));
          return [rack, rows[0]?.zone ?? "", `${hosts[0]} … ${hosts.at(-1)}`, String(rows.reduce((n, h) => n + h.servers, 0))];
        }),
      ),
    );
    say();

    // --- lifeboat ---------------------------------------------------------------------
    const { lifeboat, config } = await startDemoLifeboat(site, dir, opts.fast ? 1 : 3);
    app = lifeboat;
    const url = lifeboat.url;
    const storm = config.gates.storm;
    say(`lifeboat is running: webhook ${cyan(`${url}/api/v1/alerts`)}, the console ${bold(cyan(`${url}/console`))} ${dim(`(admin token ${ADMIN_TOKEN})`)}`);
    say(dim(`  storm guard: more than ${storm.max_recoveries} failing hosts (or ${storm.max_percent} % of them) in ${storm.window_seconds} s trips it; the failures past it wait for an operator`));
    say();

    // --- the rack dies ----------------------------------------------------------------
    const rackHosts = [...(site.racks.get(RACK) ?? [])];
    const instances = view.hosts.filter((h) => rackHosts.includes(h.host)).reduce((n, h) => n + h.servers, 0);
    say(bold(red(`✖ ${RACK} loses power`)) + `: ${rackHosts.length} hosts, ${instances} instances, dark at once. Their BMCs say Off; nova-compute stops heartbeating.`);
    site.failRack(RACK);
    for (let i = 7; i > 0; i--) {
      if (tty) process.stdout.write(`\r  ${dim(`Prometheus' rule waits for Nova to see them down too… ${i}s `)}`);
      await sleep(1000);
    }
    if (tty) process.stdout.write("\r\u001b[2K");
    const answers = await Promise.all(
      rackHosts.map(async (host) => {
        const fingerprint = createHash("sha256").update(host).digest("hex").slice(0, 16);
        const res = await fetch(`${url}/api/v1/alerts`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${WEBHOOK_TOKEN}`, "user-agent": "Alertmanager/0.25.0" },
          body: JSON.stringify(alertPayload(host, fingerprint)),
        });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    say(`  Alertmanager posts ${bold("ComputeNodeDown")} for each of the ${rackHosts.length} hosts → ${answers.map((s) => (s === 202 ? green(String(s)) : red(String(s)))).join(" ")}`);

    // --- the storm guard holds the failures past its limits ----------------------------
    const api = async <T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
      const res = await fetch(`${url}${path}`, {
        method: init.method ?? "GET",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      return (await res.json()) as T;
    };
    const latest = async (): Promise<Recovery[]> => {
      const { recoveries } = await api<{ recoveries: Recovery[] }>("/api/v1/recoveries?limit=200");
      return rackHosts.map((h) => recoveries.find((r) => r.host === h)).filter((r): r is Recovery => r !== undefined);
    };
    let held: Recovery[] = [];
    const holdDeadline = Date.now() + 60_000;
    for (;;) {
      const list = await latest();
      const settled = list.length === rackHosts.length && list.every((r) => r.state !== "pending" && r.state !== "validating");
      held = list.filter((r) => r.state === "blocked" && (r.block?.gates ?? []).includes("storm"));
      if (settled && held.length > 0) break;
      if (Date.now() > holdDeadline) throw new Error(`the storm guard did not hold ${RACK}'s recoveries (${list.map((r) => `${r.host} ${r.state}`).join(", ")})`);
      await sleep(200);
    }
    const status = await api<{ storm?: StormStatus }>("/api/v1/status");
    const through = rackHosts.filter((h) => !held.some((r) => r.host === h));
    say();
    say(bold(yellow("⛔ the storm guard tripped")) + dim(`  ${status.storm?.reason ?? ""}`));
    say(`  let through (the first within its limits): ${through.join(", ") || "none"}`);
    say(`  held until an operator approves:           ${held.map((r) => r.host).join(", ")}`);
    await sleep(opts.fast ? 500 : 2000);
    say();
    say(`An operator looks at the console, sees a rack, not a network partition, and lets them all go with one command:`);
    say(`  ${bold("$ lifeboat approve --blocked-by storm")}`);
    const approval = await api<{ approved: { id: string; host: string }[] }>("/api/v1/approve", { method: "POST", body: { blocked_by: "storm" } });
    say(`  ${green(`${approval.approved.length} recovery(ies) approved`)}: ${approval.approved.map((a) => a.host).join(", ")}`);
    say();

    // --- the recoveries, live ---------------------------------------------------------
    let details: RecoveryDetail[] = [];
    let lastLine = "";
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const list = await latest();
      details = await Promise.all(list.map((r) => api<RecoveryDetail>(`/api/v1/recoveries/${r.id}`)));
      const line = progressLine(details, instances);
      if (line !== lastLine) {
        process.stdout.write(tty ? `\r${line}` : `${line}\n`);
        lastLine = line;
      }
      if (details.length === rackHosts.length && details.every((d) => TERMINAL.has(d.state))) break;
      await sleep(250);
    }
    if (tty) process.stdout.write("\n");
    // The mails go out in the background, after the recoveries ended.
    for (let i = 0; i < 100 && details.some((d) => (d.delivery?.pending ?? 0) > 0); i++) {
      await sleep(100);
      details = await Promise.all(details.map((d) => api<RecoveryDetail>(`/api/v1/recoveries/${d.id}`)));
    }

    // --- summary ----------------------------------------------------------------------
    say();
    const ok = details.length === rackHosts.length && details.every((d) => d.state === "completed");
    say(bold(ok ? green(`✔ ${RACK} recovered`) : red(`✖ ${RACK} not fully recovered`)) + `  ${details.filter((d) => d.state === "completed").length}/${rackHosts.length} recoveries completed`);
    say();
    const after = site.view();
    say(
      table(
        ["HOST", "RECOVERY", "STATE", "STORM GUARD", "EVACUATED", "POWER / NOVA-COMPUTE"],
        details.map((d) => {
          const h = after.hosts.find((x) => x.host === d.host);
          const evacuated = d.instances.filter((i) => i.state === "evacuated").length;
          return [
            d.host,
            d.id,
            d.state === "completed" ? green(d.state) : red(d.state),
            held.some((r) => r.id === d.id) ? "held, approved" : "let through",
            `${evacuated}/${d.instances.length}`,
            h ? `${h.power}, ${h.service}${h.forcedDown ? ", forced down" : ""}${h.disabled ? ", disabled" : ""}` : "-",
          ];
        }),
      ),
    );
    say();
    say(bold(`Emails sent (${site.smtp.messages.length})`) + dim("  tenants of the evacuated instances, the operators, the storm notice"));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const pick = (name: string): string[] => metrics.split("\n").filter((l) => l.startsWith(name) && !l.endsWith(" 0"));
    say();
    say(bold("A few of lifeboat's metrics") + dim(` (${url}/metrics)`));
    for (const l of [...pick("lifeboat_storm_guard_trips_total"), ...pick("lifeboat_recoveries_total"), ...pick("lifeboat_instances_evacuated_total")]) say(`  ${dim(l)}`);
    say();
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

function progressLine(details: RecoveryDetail[], instances: number): string {
  const all = details.flatMap((d) => d.instances);
  const done = all.filter((i) => i.state === "evacuated").length;
  const failed = all.filter((i) => i.state === "failed").length;
  const ended = details.filter((d) => TERMINAL.has(d.state)).length;
  const width = 30;
  const filled = instances ? Math.round(((done + failed) / instances) * width) : width;
  const stages = [...new Set(details.filter((d) => !TERMINAL.has(d.state)).map((d) => d.state))].join(", ");
  return `  [${green("█".repeat(Math.min(width, filled)))}${dim("░".repeat(Math.max(0, width - filled)))}] ${done}/${instances} evacuated${failed ? red(`, ${failed} failed`) : ""} · ${ended}/${details.length} recoveries ended${stages ? dim(` (${stages})`) : ""}   `;
}
