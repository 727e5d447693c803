import { z } from "zod";
import { fenceDeviceSchema } from "../fencing/config.js";
import { confirmationSchema } from "../gates/config.js";
import { configSchema } from "./schema.js";

/**
 * The configuration reference (docs/config-reference.md), generated from the schema so
 * that it cannot drift: `npm run docs` writes it, a test fails when it is stale.
 */

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
}

interface Row {
  key: string;
  type: string;
  def: string;
  description: string;
}

const SECTION_INTRO: Record<string, string> = {
  server: "The HTTP listener: Alertmanager's webhook, the operators' control API, health and metrics.",
  store: "Where the journal lives: one SQLite file (`driver: sqlite`, one instance) or etcd (`driver: etcd`, active-passive instances).",
  alerts: "How alerts map to hosts, and which alerts start recoveries.",
  recovery: "The pipeline itself.",
  gates: "Safety gates between `validating` and `fencing`. A check that cannot decide blocks; it never passes.",
  fencing: "Fencing devices per host. A host is one device or `{devices: [...]}`, an escalation chain tried in order until one device confirms off.",
  openstack: "Keystone credentials and endpoints: `auth` here, a `cloud` from clouds.yaml, or the `OS_*` environment variables.",
  evacuation: "The evacuation engine: which instances, in what order, how many at once.",
  notifications: "Who is told what: operators and tenants by email, chat tools by webhook.",
  alertmanager: "Alertmanager's API, for the silences gate and the `alerts` confirmation.",
  prometheus: "Prometheus' HTTP API, for the `prometheus` confirmation.",
  monitor: "The native monitor, for clouds without Prometheus.",
  console: "The console in the browser (`/console` on `server.listen`): recoveries live, hosts, operator actions. Opened by the admin token.",
  logging: "Structured JSON logs on stdout.",
};

export function configReference(): string {
  const root = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const out: string[] = [
    "# Configuration reference",
    "",
    "Generated from the schema (`src/config/schema.ts` and the section schemas it imports) by `npm run docs`; a test fails when this file is out of date.",
    "",
    "- Unknown keys are errors. `lifeboat check-config FILE` prints every problem with its path.",
    "- `${VAR}` and `${VAR:-default}` are read from the environment; a value that is exactly one reference keeps its type (`port: ${PORT}` is a number).",
    "- Any key named `password`, `token`, `secret`, `credentials` or ending in `_password`/`_token`/`_secret` can be given as `<key>_file: /path` instead (the file's content, trailing newline removed).",
    "- Secrets never appear in logs, metrics or API answers.",
    "",
  ];
  for (const [section, schema] of Object.entries(root.properties ?? {})) {
    out.push(`## \`${section}\``, "");
    if (SECTION_INTRO[section]) out.push(SECTION_INTRO[section], "");
    if (section === "fencing") {
      out.push(...table(rowsOf(schema, section, root.required?.includes(section) ?? false).filter((r) => r.key !== "fencing.hosts")));
      out.push("", "### `fencing.hosts.<host>` devices", "");
      const devices = z.toJSONSchema(fenceDeviceSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
      for (const variant of devices.oneOf ?? devices.anyOf ?? []) {
        const driver = JSON.stringify(variant.properties?.driver?.const ?? "?").replace(/"/g, "");
        out.push(`#### \`driver: ${driver}\``, "");
        out.push(...table(rowsOf({ ...variant, properties: Object.fromEntries(Object.entries(variant.properties ?? {}).filter(([k]) => k !== "driver")) }, "fencing.hosts.<host>", true)));
        out.push("");
      }
      continue;
    }
    if (section === "gates") {
      out.push(...table(rowsOf(schema, section, root.required?.includes(section) ?? false)));
      out.push("", "### `gates.confirmations[]` drivers", "");
      out.push(...driverTables(confirmationSchema, "gates.confirmations[]"));
      continue;
    }
    const variants = schema.oneOf ?? schema.anyOf;
    if (variants && !schema.properties) {
      for (const v of variants) {
        const disc = v.properties?.driver?.const;
        out.push(`### \`${section}\` with \`driver: ${JSON.stringify(disc).replace(/"/g, "")}\``, "");
        out.push(...table(rowsOf(v, section, false)));
        out.push("");
      }
      continue;
    }
    out.push(...table(rowsOf(schema, section, root.required?.includes(section) ?? false)));
    out.push("");
  }
  return `${out.join("\n").trimEnd()}\n`;
}

/** One table per `driver:` of a discriminated union, its keys under `path`. */
function driverTables(union: z.ZodType, path: string): string[] {
  const out: string[] = [];
  const json = z.toJSONSchema(union, { io: "input", unrepresentable: "any" }) as JsonSchema;
  for (const variant of json.oneOf ?? json.anyOf ?? []) {
    const driver = JSON.stringify(variant.properties?.driver?.const ?? "?").replace(/"/g, "");
    const keys = Object.fromEntries(Object.entries(variant.properties ?? {}).filter(([k]) => k !== "driver"));
    out.push(`#### \`driver: ${driver}\``, "");
    out.push(...(Object.keys(keys).length ? table(rowsOf({ ...variant, properties: keys }, path, true)) : ["(no other keys)"]));
    out.push("");
  }
  return out;
}

function table(rows: Row[]): string[] {
  if (rows.length === 0) return ["(no keys)"];
  return ["| key | type | default | description |", "| --- | --- | --- | --- |", ...rows.map((r) => `| \`${r.key}\` | ${r.type} | ${r.def} | ${r.description} |`)];
}

/** One row per leaf (and per object with a description), depth first. */
function rowsOf(schema: JsonSchema, path: string, required: boolean): Row[] {
  const rows: Row[] = [];
  const props = schema.properties;
  if (props) {
    for (const [key, child] of Object.entries(props)) {
      const p = `${path}.${key}`;
      const req = schema.required?.includes(key) ?? false;
      const nested = objectProps(child);
      if (nested) {
        if (child.description) rows.push(row(p, child, req, "object"));
        rows.push(...rowsOf(nested, p, req));
      } else {
        rows.push(row(p, child, req));
        const rec = recordValue(child);
        if (rec?.properties) rows.push(...rowsOf(rec, `${p}.<name>`, false));
      }
    }
    return rows;
  }
  return [row(path, schema, required)];
}

function objectProps(s: JsonSchema): JsonSchema | null {
  if (s.properties) return s;
  const variants = s.anyOf ?? s.oneOf;
  const obj = variants?.find((v) => v.properties);
  // A union with one object shape (e.g. `none` or {bearer_token, basic}) is documented by that shape.
  return obj && variants && variants.length <= 2 && variants.every((v) => v.properties || v.const !== undefined || v.type !== "object") ? { ...obj, description: s.description ?? obj.description } : null;
}

function recordValue(s: JsonSchema): JsonSchema | null {
  return typeof s.additionalProperties === "object" ? s.additionalProperties : null;
}

function row(key: string, s: JsonSchema, required: boolean, forcedType?: string): Row {
  const variants = s.anyOf ?? s.oneOf;
  const alt = variants?.filter((v) => v.const !== undefined).map((v) => `\`${JSON.stringify(v.const)}\``) ?? [];
  const description = [s.description ?? variants?.find((v) => v.description)?.description ?? "", alt.length ? `Also: ${alt.join(", ")}.` : ""]
    .filter(Boolean)
    .join(" ")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ");
  const def = s.default !== undefined ? `\`${JSON.stringify(s.default)}\`` : required ? "**required**" : "";
  return { key, type: forcedType ?? typeOf(s), def, description };
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(" \\| ");
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return [...new Set(variants.map(typeOf))].join(" \\| ");
  if (s.type === "array") return `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.type === "object") return recordValue(s) ? `map of ${typeOf(recordValue(s)!)}` : "object";
  if (s.type === "integer") return "integer";
  if (Array.isArray(s.type)) return s.type.join(" \\| ");
  return s.type ?? "any";
}
