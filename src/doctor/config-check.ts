import { loadConfigFile } from "../config/load.js";
import type { Config } from "../config/schema.js";
import type { DoctorRow } from "./types.js";

/**
 * The config, first: every problem with its path (as check-config prints them), or one ok
 * row and the warnings about a valid config that would still let a recovery down.
 */
export function configRows(file: string, env: NodeJS.ProcessEnv = process.env): { config: Config | null; rows: DoctorRow[] } {
  const loaded = loadConfigFile(file, env);
  if (!loaded.ok) {
    return { config: null, rows: loaded.problems.map((p) => ({ check: "config", target: p.path, result: "fail", detail: p.message })) };
  }
  const c = loaded.config;
  const hosts = Object.keys(c.fencing.hosts).length;
  const rows: DoctorRow[] = [
    {
      check: "config",
      target: file,
      result: "ok",
      detail: `valid: ${hosts} host(s) with fencing, confirmations ${c.gates.confirmations.map((x) => x.driver).join(", ") || "none"}, store ${c.store.driver}`,
    },
  ];
  rows.push(...configWarnings(c));
  return { config: c, rows };
}

/** What a valid config can still get wrong for a recovery. */
export function configWarnings(c: Config): DoctorRow[] {
  const rows: DoctorRow[] = [];
  const warn = (target: string, detail: string): void => void rows.push({ check: "config", target, result: "warn", detail });
  if (Object.keys(c.fencing.hosts).length === 0) {
    rows.push({ check: "config", target: "fencing.hosts", result: "fail", detail: "no host has fencing configured: every recovery would stop before evacuating" });
  }
  for (const [host, h] of Object.entries(c.fencing.hosts)) {
    if (h.devices.some((d) => d.driver === "noop")) warn(`fencing.hosts.${host}`, "noop device: it fences nothing (tests only)");
  }
  if (c.recovery.dry_run) warn("recovery.dry_run", "DRY RUN: decisions are recorded, nothing is fenced, isolated or evacuated");
  if (c.gates.silences.enabled && !c.alertmanager.url) warn("gates.silences", "enabled, but alertmanager.url is not set: silences are not consulted");
  if (c.server.auth === "none") warn("server.auth", "the webhook takes alerts from anyone who can reach it");
  const n = c.notifications;
  if (n.operators.length === 0 && n.webhooks.length === 0) warn("notifications", "no operators and no webhooks: nobody is told about recoveries or failed fences");
  return rows;
}
