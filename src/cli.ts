#!/usr/bin/env node
import { Command, Option } from "commander";
import { ApiClient, type ClientOptions } from "./cli/client.js";
import { recoveriesTable, recoveryText } from "./cli/format.js";
import type { SandboxCommandOptions } from "./cli/sandbox.js";
import type { Recovery, RecoveryDetail } from "./domain/model.js";
import { VERSION } from "./version.js";

/**
 * lifeboat's command line. `serve` runs the daemon; `check-config`, `doctor`, `fence
 * status` and `check` work from a config file; the rest talk to a running instance
 * through its control API (admin token).
 */
const program = new Command();
program.name("lifeboat").description("High availability for OpenStack compute nodes, driven by Prometheus and Alertmanager.").version(VERSION);

function clientOptions(cmd: Command): Command {
  return cmd
    .option("--url <url>", "URL of the running lifeboat (default: $LIFEBOAT_URL, the config's listen address, or http://127.0.0.1:9095)")
    .option("--token <token>", "admin token (default: $LIFEBOAT_ADMIN_TOKEN or the config's server.admin_token)")
    .option("-c, --config <file>", "read the URL and admin token from this config")
    .option("--json", "print JSON instead of text");
}

type ClientOpts = ClientOptions & { json?: boolean };

function print(opts: ClientOpts, data: unknown, text: () => string): void {
  console.log(opts.json ? JSON.stringify(data, null, 2) : text());
}

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.error(`lifeboat: ${(err as Error).message}`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}

program
  .command("serve")
  .description("run lifeboat: webhook, control API, metrics, and the recovery pipeline")
  .requiredOption("-c, --config <file>", "configuration file (YAML)")
  .option("--listen <host:port>", "override server.listen")
  .action(async (opts: { config: string; listen?: string }) => {
    // Loading reads files lifeboat ships (the default notification templates): a missing one is a refusal, not a crash.
    const loaded = await import("./cli/serve.js").catch((err: unknown) => {
      console.error(`lifeboat: refusing to start: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
      return null;
    });
    if (loaded) await loaded.serve(opts);
  });

program
  .command("check-config")
  .description("validate a configuration file: print every problem with its path; exit 1 if any")
  .argument("[file]", "configuration file")
  .option("-c, --config <file>", "configuration file")
  .action(async (file: string | undefined, opts: { config?: string }) => {
    const path = file ?? opts.config;
    if (!path) {
      console.error("lifeboat: give a configuration file");
      process.exitCode = 2;
      return;
    }
    const { formatProblems, loadConfigFile } = await import("./config/load.js");
    const r = loadConfigFile(path);
    if (!r.ok) {
      console.error(`${path}: ${r.problems.length} problem(s)\n${formatProblems(r.problems)}`);
      process.exitCode = 1;
      return;
    }
    const hosts = Object.keys(r.config.fencing.hosts).length;
    console.log(`${path}: OK (${hosts} host(s) with fencing, ${r.config.gates.confirmations.length} confirmation(s), triggers: ${r.config.alerts.trigger_alertnames.join(", ")}${r.config.recovery.dry_run ? ", DRY RUN" : ""})`);
  });

clientOptions(program.command("status").description("show the running instance: leader, pause, open recoveries")).action((opts: ClientOpts) =>
  run(async () => {
    const s = await (await ApiClient.fromOptions(opts)).request<Record<string, unknown>>("GET", "/api/v1/status");
    print(opts, s, () => statusText(s));
  }),
);

clientOptions(
  program
    .command("recoveries")
    .description("list recoveries, newest first")
    .option("--host <host>")
    .option("--state <states>", "comma-separated states")
    .option("--open", "only recoveries not yet ended")
    .option("--limit <n>", "how many", "50"),
).action((opts: ClientOpts & { host?: string; state?: string; open?: boolean; limit: string }) =>
  run(async () => {
    const q = new URLSearchParams({ limit: opts.limit });
    if (opts.host) q.set("host", opts.host);
    if (opts.state) q.set("state", opts.state);
    if (opts.open) q.set("open", "true");
    const r = await (await ApiClient.fromOptions(opts)).request<{ recoveries: Recovery[] }>("GET", `/api/v1/recoveries?${q.toString()}`);
    print(opts, r, () => recoveriesTable(r.recoveries));
  }),
);

clientOptions(program.command("show").description("one recovery: timeline, gate decisions, instances, notifications").argument("<id>")).action((id: string, opts: ClientOpts) =>
  run(async () => {
    const d = await (await ApiClient.fromOptions(opts)).request<RecoveryDetail>("GET", `/api/v1/recoveries/${encodeURIComponent(id)}`);
    print(opts, d, () => recoveryText(d));
  }),
);

clientOptions(
  program
    .command("recover")
    .description("start a recovery of HOST now (no grace period; policy gates approved by you)")
    .argument("<host>")
    .option("--dry-run", "decide everything, change nothing")
    .addOption(new Option("--confirm-off", "you confirm the host is powered off: fencing is skipped (recorded as such)")),
).action((host: string, opts: ClientOpts & { dryRun?: boolean; confirmOff?: boolean }) =>
  run(async () => {
    const r = await (await ApiClient.fromOptions(opts)).request<Recovery>("POST", "/api/v1/recover", { host, dry_run: opts.dryRun ?? false, confirm_off: opts.confirmOff ?? false });
    print(opts, r, () => `recovery ${r.id} of ${r.host} started${r.dryRun ? " (dry run)" : ""}${r.confirmedOff ? ", host confirmed off by you" : ""}\nfollow it: lifeboat show ${r.id}`);
  }),
);

clientOptions(
  program
    .command("approve")
    .description("approve blocked recoveries past their policy gates: the ids named, and/or every blocked one a selector matches")
    .argument("[ids...]")
    .option("--blocked-by <gate>", "every recovery blocked by this gate (e.g. storm)")
    .option("--zone <zone>", "every blocked recovery of a host in this availability zone"),
).action((ids: string[], opts: ClientOpts & { blockedBy?: string; zone?: string }) =>
  run(async () => {
    if (ids.length === 0 && !opts.blockedBy && !opts.zone) throw new Error("name the recoveries to approve, or a selector (--blocked-by storm, --zone ZONE)");
    const body = { ...(ids.length ? { ids } : {}), ...(opts.blockedBy ? { blocked_by: opts.blockedBy } : {}), ...(opts.zone ? { zone: opts.zone } : {}) };
    const r = await (await ApiClient.fromOptions(opts)).request<ApprovalReport>("POST", "/api/v1/approve", body);
    print(opts, r, () =>
      [
        `${r.approved.length} recovery(ies) approved`,
        ...r.approved.map((a) => `  ✓ ${a.id}  ${a.host}  (${a.state})`),
        ...r.skipped.map((x) => `  ✗ ${x.id}${x.host ? `  ${x.host}` : ""}: ${x.reason}`),
      ].join("\n"),
    );
    // Something asked for was not approved: say so in the exit code too.
    if (r.skipped.length > 0 || r.approved.length === 0) process.exitCode = 1;
  }),
);

/** `POST /api/v1/approve`'s answer (src/engine/commands.ts). */
interface ApprovalReport {
  approved: { id: string; host: string; state: string }[];
  skipped: { id: string; host?: string; reason: string }[];
}

clientOptions(program.command("cancel").description("cancel a recovery before fencing").argument("<id>").option("--reason <text>")).action(
  (id: string, opts: ClientOpts & { reason?: string }) =>
    run(async () => {
      const r = await (await ApiClient.fromOptions(opts)).request<Recovery>("POST", `/api/v1/recoveries/${encodeURIComponent(id)}/cancel`, opts.reason ? { reason: opts.reason } : {});
      print(opts, r, () => `recovery ${r.id} ${r.state}: ${r.reason}`);
    }),
);

clientOptions(program.command("pause").description("pause automation (persisted): new recoveries stop before fencing").option("--reason <text>")).action(
  (opts: ClientOpts & { reason?: string }) =>
    run(async () => {
      const r = await (await ApiClient.fromOptions(opts)).request<{ by: string; at: string }>("POST", "/api/v1/pause", opts.reason ? { reason: opts.reason } : {});
      print(opts, r, () => `automation paused by ${r.by} at ${r.at}`);
    }),
);

clientOptions(program.command("resume").description("resume automation")).action((opts: ClientOpts) =>
  run(async () => {
    const r = await (await ApiClient.fromOptions(opts)).request<{ by: string; at: string }>("POST", "/api/v1/resume");
    print(opts, r, () => `automation resumed by ${r.by} at ${r.at}`);
  }),
);

clientOptions(program.command("host").description("what lifeboat holds about a host: fence hold, release progress, open recovery").argument("<host>")).action(
  (host: string, opts: ClientOpts) =>
    run(async () => {
      const h = await (await ApiClient.fromOptions(opts)).request<HostView>("GET", `/api/v1/hosts/${encodeURIComponent(host)}`);
      print(opts, h, () => hostText(h));
    }),
);

clientOptions(
  program
    .command("release")
    .description("bring a repaired host back: power on, wait for nova-compute, un-force, enable; lift lifeboat's hold")
    .argument("<host>")
    .option("--no-wait", "start it and return"),
).action((host: string, opts: ClientOpts & { wait: boolean }) =>
  run(async () => {
    const api = await ApiClient.fromOptions(opts);
    const started = await api.request<ReleaseView>("POST", `/api/v1/hosts/${encodeURIComponent(host)}/release`);
    if (!opts.wait) {
      console.log(`release of ${host} started as recovery ${started.recoveryId}; follow it: lifeboat host ${host} (or lifeboat show ${started.recoveryId})`);
      return;
    }
    let h: HostView;
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      h = await api.request<HostView>("GET", `/api/v1/hosts/${encodeURIComponent(host)}`);
      if (h.release?.recoveryId !== started.recoveryId || h.release.done) break;
    }
    print(opts, h, () => hostText(h));
    if (h.release?.recoveryId !== started.recoveryId || h.release.state !== "completed") process.exitCode = 1;
  }),
);

const fence = program.command("fence").description("fencing devices: read power state, power off by hand");
fence
  .command("status")
  .description("read every configured host's power state through its device chain (run after each BMC password rotation)")
  .argument("[hosts...]", "only these hosts")
  .requiredOption("-c, --config <file>", "configuration file")
  .option("--json", "print JSON")
  .action(async (hosts: string[], opts: { config: string; json?: boolean }) => {
    const { fenceStatusCommand } = await import("./cli/fence.js");
    process.exitCode = await fenceStatusCommand(opts.config, hosts, opts.json ?? false);
  });
clientOptions(
  fence
    .command("off")
    .description("power a host off by hand, recorded like an automatic fence (no gates, no evacuation)")
    .argument("<host>")
    .option("--yes", "really power it off"),
).action((host: string, opts: ClientOpts & { yes?: boolean }) =>
  run(async () => {
    if (!opts.yes) throw new Error(`this powers ${host} off; add --yes to confirm`);
    const api = await ApiClient.fromOptions(opts);
    const { recovery } = await api.request<{ recovery: string }>("POST", `/api/v1/hosts/${encodeURIComponent(host)}/fence`, { confirm: true });
    let d: RecoveryDetail;
    for (;;) {
      d = await api.request<RecoveryDetail>("GET", `/api/v1/recoveries/${recovery}`);
      if (["completed", "partial", "failed", "aborted"].includes(d.state)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    print(opts, d, () => `${host}: ${d.fenceState === "off" ? "powered off (confirmed by read-back)" : `NOT confirmed off: ${d.reason}`}\nrecorded as recovery ${d.id}`);
    if (d.fenceState !== "off") process.exitCode = 1;
  }),
);

interface HostView {
  host: string;
  hold: { fenced: boolean; recoveryId: string; by: string; at: string } | null;
  release: ReleaseView | null;
  openRecovery: string | null;
  fencing: boolean;
}

/** A host's latest release, as the API answers it (src/engine/host-ops.ts). */
interface ReleaseView {
  recoveryId: string;
  state: string;
  done: boolean;
  by: string;
  startedAt: string;
  finishedAt?: string;
  reason: string;
  steps: { step: string; ok: boolean; skipped?: boolean; message: string }[];
}

function hostText(h: HostView): string {
  const lines = [
    `host ${h.host}  fencing ${h.fencing ? "configured" : "NOT configured"}`,
    `hold: ${h.hold?.fenced ? `held down by recovery ${h.hold.recoveryId} since ${h.hold.at} (lifeboat release ${h.host})` : "none"}`,
    `open recovery: ${h.openRecovery ?? "none"}`,
  ];
  if (h.release) {
    const r = h.release;
    lines.push(`release: recovery ${r.recoveryId}, ${r.state} (by ${r.by}, ${r.startedAt}${r.finishedAt ? ` → ${r.finishedAt}` : ""})`);
    for (const st of r.steps) lines.push(`  ${st.ok ? (st.skipped ? "-" : "✓") : "✗"} ${st.step.padEnd(22)} ${st.message}`);
    lines.push(`  ${r.reason}`);
  }
  return lines.join("\n");
}

program
  .command("check")
  .description('the native monitor, once: print "No failed nodes" (exit 0) or the failed nova-compute hosts (exit 1)')
  .requiredOption("-c, --config <file>", "configuration file (its openstack section)")
  .option("--json", "print JSON")
  .action(async (opts: { config: string; json?: boolean }) => {
    const { checkCommand } = await import("./cli/check.js");
    process.exitCode = await checkCommand(opts.config, opts.json ?? false);
  });

program
  .command("doctor")
  .description("check everything a recovery will need: config, Keystone, Nova, every fencing device, Alertmanager, Prometheus, SMTP")
  .requiredOption("-c, --config <file>", "configuration file")
  .action(async (opts: { config: string }) => {
    const { doctorCommand } = await import("./cli/doctor.js");
    process.exitCode = await doctorCommand(opts.config);
  });

program
  .command("sandbox")
  .description("run a simulated site (OpenStack cloud, Redfish BMCs, SMTP catcher) for config/example.yaml and experiments")
  .option("--host <address>", "listen address", "127.0.0.1")
  .option("--cloud-port <port>", "Keystone/Nova/Placement port", "5000")
  .option("--redfish-port <port>", "Redfish BMC simulator port", "8000")
  .option("--smtp-port <port>", "SMTP catcher port", "2525")
  .option("--control-port <port>", "control API port (fail/repair hosts)", "8999")
  .option("--hosts <n>", "compute hosts", "4")
  .option("--servers-per-host <n>", "servers on each loaded host", "4")
  .option("--racks <n>", "lay the hosts out in racks (compute-001…, rack-01…), racks in zones: POST /racks/<rack>/fail fails one whole")
  .option("--zones <n>", "availability zones of a site in racks", "2")
  .option("--print-config", "print the lifeboat config sections that point at this site")
  .action(async (opts: SandboxCommandOptions) => {
    await run(async () => {
      const { sandboxCommand } = await import("./cli/sandbox.js");
      await sandboxCommand(opts);
    });
  });

program
  .command("demo")
  .description("the whole story on embedded defaults: a simulated site, a compute node dies, lifeboat recovers it")
  .option("--fast", "shorter waits")
  .addOption(new Option("--scenario <scenario>", "host: one compute node dies; rack: a whole rack loses power, the storm guard holds it, one approval lets it go").choices(["host", "rack"]).default("host"))
  .action(async (opts: { fast?: boolean; scenario: "host" | "rack" }) => {
    await run(async () => {
      if (opts.scenario === "rack") {
        const { rackDemoCommand } = await import("./cli/demo-rack.js");
        process.exitCode = await rackDemoCommand({ fast: opts.fast ?? false });
        return;
      }
      const { demoCommand } = await import("./cli/demo.js");
      process.exitCode = await demoCommand({ fast: opts.fast ?? false });
    });
  });

function statusText(s: Record<string, unknown>): string {
  const leader = s.leader as { self: boolean; id: string | null } | undefined;
  const paused = s.paused as { paused: boolean; by: string; reason: string; at: string } | undefined;
  const open = (s.openRecoveries ?? {}) as Record<string, number>;
  const storm = s.storm as { tripped: boolean; since?: string; reason?: string; until?: string; held?: string[] } | undefined;
  const lines = [
    `lifeboat ${String(s.version)}  instance ${String(s.instance)}  store ${String(s.store)}${s.dryRun ? "  DRY RUN" : ""}`,
    `leader: ${leader?.self ? "this instance" : (leader?.id ?? "none")}`,
    `automation: ${paused?.paused ? `PAUSED by ${paused.by} at ${paused.at} (${paused.reason})` : "active"}`,
    `storm guard: ${storm?.tripped ? `TRIPPED at ${storm.since ?? "?"} (${storm.reason ?? "?"}); holding ${storm.held?.length ? storm.held.join(", ") : "no host"} until approved or ${storm.until ?? "?"}` : "calm"}`,
    `open recoveries: ${Object.keys(open).length ? Object.entries(open).map(([k, v]) => `${k} ${v}`).join(", ") : "none"}`,
  ];
  return lines.join("\n");
}

await program.parseAsync(process.argv);
