import { readFileSync } from "node:fs";
import { parse as parseYamlScalar } from "yaml";

/**
 * Pre-validation passes over the parsed YAML tree:
 *  - `${VAR}` / `${VAR:-default}` in string values (`$${` is a literal `${`); a value that is
 *    exactly one reference is re-read as a YAML scalar, so `port: ${PORT}` gives a number;
 *  - `<secret>_file: PATH` is replaced by `<secret>: <file content>` (trailing newline
 *    dropped) for secret-named keys (password, token, secret, credentials…), so secrets can
 *    live in mounted files rather than in the config.
 * Problems are collected with their paths, never thrown one at a time.
 */

export interface ConfigProblem {
  path: string;
  message: string;
}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;
export const SECRET_KEY = /(^|_)(password|token|secret|credentials|api_key)$/;

export function pathText(path: readonly (string | number)[]): string {
  return path.length === 0 ? "(top level)" : path.map(String).join(".");
}

export function interpolate(
  node: unknown,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  path: (string | number)[] = [],
): unknown {
  if (typeof node === "string") return interpolateString(node, env, problems, path);
  if (Array.isArray(node)) return node.map((v, i) => interpolate(v, env, problems, [...path, i]));
  if (node !== null && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) out[k] = interpolate(v, env, problems, [...path, k]);
    return out;
  }
  return node;
}

function interpolateString(s: string, env: NodeJS.ProcessEnv, problems: ConfigProblem[], path: (string | number)[]): unknown {
  // Like the shell's ${VAR:-default}, an empty variable counts as unset; the message tells which it was.
  const missing: string[] = [];
  const empty: string[] = [];
  const lookup = (name: string, fallback: string | undefined): string => {
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    if (fallback !== undefined) return fallback;
    (v === "" ? empty : missing).push(name);
    return "";
  };
  const report = (): boolean => {
    const parts = [
      ...(missing.length ? [`environment variable ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not set`] : []),
      ...(empty.length ? [`environment variable ${empty.join(", ")} ${empty.length > 1 ? "are" : "is"} set but empty`] : []),
    ];
    if (parts.length) problems.push({ path: pathText(path), message: parts.join("; ") });
    return parts.length > 0;
  };
  const whole = WHOLE_REF.exec(s);
  if (whole) {
    const value = lookup(whole[1]!, whole[2]);
    return report() ? undefined : typedScalar(value);
  }
  const out = s.replace(REF, (m: string, name: string | undefined, fallback: string | undefined) =>
    name === undefined ? "${" : lookup(name, fallback),
  );
  return report() ? undefined : out;
}

/** "9095" → 9095, "true" → true, anything else stays a string. */
function typedScalar(value: string): unknown {
  if (!/^(-?\d+(\.\d+)?|true|false)$/.test(value)) return value;
  const parsed: unknown = parseYamlScalar(value);
  return typeof parsed === "number" || typeof parsed === "boolean" ? parsed : value;
}

export function resolveSecretFiles(
  node: unknown,
  problems: ConfigProblem[],
  readFile: (p: string) => string = (p) => readFileSync(p, "utf8"),
  path: (string | number)[] = [],
): unknown {
  if (Array.isArray(node)) return node.map((v, i) => resolveSecretFiles(v, problems, readFile, [...path, i]));
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  const src = node as Record<string, unknown>;
  for (const [k, v] of Object.entries(src)) {
    const base = k.endsWith("_file") ? k.slice(0, -"_file".length) : null;
    if (base !== null && SECRET_KEY.test(base)) {
      if (src[base] !== undefined) {
        problems.push({ path: pathText([...path, k]), message: `give either ${base} or ${k}, not both` });
        continue;
      }
      if (typeof v !== "string") {
        problems.push({ path: pathText([...path, k]), message: "expected a file path" });
        continue;
      }
      try {
        out[base] = readFile(v).replace(/\r?\n$/, "");
      } catch (err) {
        problems.push({ path: pathText([...path, k]), message: `cannot read ${v}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      }
      continue;
    }
    out[k] = resolveSecretFiles(v, problems, readFile, [...path, k]);
  }
  return out;
}
