import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./schema.js";
import { interpolate, pathText, resolveSecretFiles, type ConfigProblem } from "./interpolate.js";

export type { ConfigProblem };

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${file}: ${problems.length} problem(s)\n${formatProblems(problems)}`);
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
}

export type LoadResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

/** Parse YAML text, interpolate `${ENV}`, resolve `*_file` secrets, validate. Never throws. */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const problems: ConfigProblem[] = [];
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    return { ok: false, problems: doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, message: e.message.split("\n")[0] ?? e.message })) };
  }
  const raw: unknown = doc.toJS() ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, problems: [{ path: "(top level)", message: "expected a mapping of sections (server, fencing, …)" }] };
  }
  const interpolated = interpolate(raw, env, problems);
  const resolved = resolveSecretFiles(interpolated, problems);
  const parsed = configSchema.safeParse(resolved);
  if (!parsed.success) {
    // A value already reported (unset variable, unreadable file) is not reported again as missing.
    const reported = problems.map((p) => p.path);
    const covers = (path: string): boolean => reported.some((r) => r === path || r.startsWith(`${path}.`) || r.startsWith(`${path}_file`));
    problems.push(...zodProblems(parsed.error).filter((p) => !covers(p.path)));
  }
  if (problems.length) return { ok: false, problems: dedupe(problems) };
  return parsed.success ? { ok: true, config: parsed.data } : { ok: false, problems };
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return { ok: false, problems: [{ path: "(file)", message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }] };
  }
  return parseConfig(text, env);
}

/** Load or throw a ConfigError listing every problem. */
export function loadConfigOrThrow(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const r = loadConfigFile(file, env);
  if (!r.ok) throw new ConfigError(file, r.problems);
  return r.config;
}

function zodProblems(error: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: pathText([...issue.path.map(pathKey), key]), message: "unknown key" });
      continue;
    }
    if (issue.code === "invalid_union" && issue.errors.length) {
      // Report the branch that got furthest: the one with the fewest problems.
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
      for (const sub of best) out.push(...zodProblems({ issues: [{ ...sub, path: [...issue.path, ...sub.path] }] } as unknown as z.ZodError));
      if (best.length) continue;
    }
    out.push({ path: pathText(issue.path.map(pathKey)), message: issueMessage(issue) });
  }
  return out;
}

function pathKey(k: PropertyKey): string | number {
  return typeof k === "symbol" ? k.toString() : k;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) return "required";
  if (issue.code === "invalid_type") return issue.message.replace(/^Invalid input: /, "");
  if (issue.code === "invalid_value") return issue.message.replace(/^Invalid (input|option): /, "");
  return issue.message;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
