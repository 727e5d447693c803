import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** One captured call of a real cloud (test/fixtures/openstack/*.json). */
export interface Fixture {
  note: string;
  request: { method: string; url: string; headers: Record<string, string>; body: unknown };
  response: { status: number; headers: Record<string, string>; body: unknown };
}

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures", "openstack");

export function loadFixture(name: string): Fixture {
  return JSON.parse(readFileSync(path.join(DIR, name.endsWith(".json") ? name : `${name}.json`), "utf8")) as Fixture;
}

/**
 * The shape of a JSON value: its type, and for objects the shape of every key. Arrays
 * merge the shapes of their elements (so a list of servers compares as one server shape
 * with the union of keys and, per key, the union of types).
 */
export type Shape = string | { [key: string]: Shape } | Shape[];

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Free-form maps whose keys are data, not schema: compared as "map". */
const FREE_FORM = new Set(["metadata", "extra_specs", "addresses"]);

export function shapeOf(v: unknown, key?: string): Shape {
  if (key !== undefined && FREE_FORM.has(key) && v !== null && typeof v === "object" && !Array.isArray(v)) return "map";
  if (Array.isArray(v)) {
    if (v.length === 0) return ["empty"];
    return [v.map((x) => shapeOf(x)).reduce(mergeShapes)];
  }
  if (v !== null && typeof v === "object") {
    const out: Record<string, Shape> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = shapeOf(x, k);
    return out;
  }
  return typeName(v);
}

function mergeShapes(a: Shape, b: Shape): Shape {
  if (typeof a === "string" && typeof b === "string") {
    return [...new Set([...a.split("|"), ...b.split("|")])].sort().join("|");
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a[0] === "empty") return b;
    if (b[0] === "empty") return a;
    return [mergeShapes(a[0]!, b[0]!)];
  }
  if (typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, Shape> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? mergeShapes(out[k]!, v) : v;
    return out;
  }
  return `${JSON.stringify(a)}|${JSON.stringify(b)}`;
}

/** Differences between two shapes, as readable lines ("servers[].locked_reason: missing"). */
export function shapeDiff(actual: Shape, expected: Shape, at = "$"): string[] {
  if (typeof expected === "string" || typeof actual === "string") {
    return JSON.stringify(actual) === JSON.stringify(expected) ? [] : [`${at}: ${JSON.stringify(actual)} where the real cloud has ${JSON.stringify(expected)}`];
  }
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual)) return [`${at}: array vs object`];
    if (expected[0] === "empty" || actual[0] === "empty") return [];
    return shapeDiff(actual[0]!, expected[0]!, `${at}[]`);
  }
  const out: string[] = [];
  for (const k of Object.keys(expected)) {
    if (!(k in actual)) out.push(`${at}.${k}: missing`);
    else out.push(...shapeDiff(actual[k]!, expected[k]!, `${at}.${k}`));
  }
  for (const k of Object.keys(actual)) if (!(k in expected)) out.push(`${at}.${k}: not in the real answer`);
  return out;
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One HTTP call, answer parsed as JSON (null when empty). */
export async function call(
  url: string,
  opts: { method?: string; token?: string; microversion?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<RawAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers["X-Auth-Token"] = opts.token;
  if (opts.microversion) headers["OpenStack-API-Version"] = opts.microversion;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method: opts.method ?? "GET", headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.length > 0 ? (JSON.parse(text) as unknown) : null };
}

/** Headers of the fixture that must also be in the simulated answer; some with the same value. */
export function headerProblems(actual: Headers, expected: Record<string, string>): string[] {
  const out: string[] = [];
  const sameValue = new Set(["content-type", "openstack-api-version", "x-openstack-nova-api-version", "vary"]);
  for (const [name, value] of Object.entries(expected)) {
    const lower = name.toLowerCase();
    const got = actual.get(lower);
    if (got === null) out.push(`header ${name} missing`);
    else if (sameValue.has(lower) && got !== value) out.push(`header ${name}: ${got} where the real cloud has ${value}`);
    else if (lower.endsWith("request-id") && !/^req-[0-9a-f-]{36}$/.test(got)) out.push(`header ${name}: ${got} is not a request id`);
  }
  return out;
}
