import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

/** Paths of the shipped observability files and a runner for promtool/amtool. */

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const RULES_DIR = resolve(ROOT, "rules");
export const RULE_FILES = readdirSync(RULES_DIR)
  .filter((f) => f.endsWith(".rules.yml"))
  .sort()
  .map((f) => resolve(RULES_DIR, f));
export const RULE_TEST_FILES = readdirSync(resolve(RULES_DIR, "tests"))
  .filter((f) => f.endsWith(".test.yml"))
  .sort()
  .map((f) => resolve(RULES_DIR, "tests", f));
export const ALERTMANAGER_EXAMPLE = resolve(ROOT, "config/alertmanager.example.yml");
export const PROMETHEUS_EXAMPLE = resolve(ROOT, "config/prometheus.example.yml");
export const DASHBOARD = resolve(ROOT, "config/grafana-dashboard.json");

export interface RunResult {
  code: number;
  output: string;
}

/** Runs a command to its end; never throws on a non-zero exit (the caller asserts on it). */
export function run(command: string, args: string[], cwd = ROOT): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { cwd, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") {
        // not an exit status: the command could not run, or was killed (timeout)
        reject(new Error(`${command} ${args.join(" ")}: ${err.message}`));
        return;
      }
      resolvePromise({ code: typeof err?.code === "number" ? err.code : 0, output: `${stdout}${stderr}` });
    });
  });
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; rules: (AlertingRule | { record: string; expr: string })[] }[];
}

export function readYaml<T>(file: string): T {
  return parse(readFileSync(file, "utf8")) as T;
}

export function alertingRules(file: string): AlertingRule[] {
  return readYaml<RuleFile>(file).groups.flatMap((g) => g.rules.filter((r): r is AlertingRule => "alert" in r));
}
