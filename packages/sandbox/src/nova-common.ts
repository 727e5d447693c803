import { randomUUID } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { SandboxState, SimToken } from "./cloud-state.js";

/**
 * What every simulated Nova (and Placement) answer shares: request ids, JSON bodies with
 * the exact content types of the real services, Nova's fault envelopes, keystonemiddleware's
 * 401, microversion negotiation, and the JSON-schema error messages nova-api produces.
 */

export interface ServiceLocals {
  /** Negotiated microversion of this request. */
  mv: string;
  token: SimToken;
  admin: boolean;
  /** `http://127.0.0.1:PORT[/_/region/iface]/compute` as the client reached it. */
  root: string;
}

export function locals(res: Response): ServiceLocals {
  return res.locals as ServiceLocals;
}

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/** A JSON answer with exactly this Content-Type (express would append a charset to strings). */
export function sendJson(res: Response, status: number, body: unknown, contentType = "application/json"): void {
  res.status(status);
  res.setHeader("Content-Type", contentType); // not res.set(): express would append a charset
  if (body === null || body === undefined) {
    res.set("Content-Length", "0").end();
    return;
  }
  res.send(Buffer.from(JSON.stringify(body)));
}

const FAULT_NAMES: Record<number, string> = {
  400: "badRequest",
  401: "unauthorized",
  403: "forbidden",
  404: "itemNotFound",
  405: "badMethod",
  409: "conflictingRequest",
  413: "overLimit",
  415: "badMediaType",
  429: "overLimit",
  501: "notImplemented",
  503: "serviceUnavailable",
};

/** Nova's fault envelope: `{"badRequest": {"code": 400, "message": …}}`. */
export function novaError(res: Response, status: number, message: string): void {
  const key = FAULT_NAMES[status] ?? "computeFault";
  sendJson(res, status, { [key]: { code: status, message } }, "application/json; charset=UTF-8");
}

/** keystonemiddleware's answer to a missing, expired or revoked token (fixture keystone-token-expired-or-invalid). */
export function unauthorized(res: Response, authUri: string): void {
  res.set("WWW-Authenticate", `Keystone uri="${authUri}"`);
  sendJson(res, 401, { error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
}

/** Token check of a service endpoint (keystonemiddleware runs before the API's own code). */
export function requireToken(state: SandboxState, authUri: (req: Request) => string): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const token = state.validToken(req.get("X-Auth-Token"));
    if (!token) {
      unauthorized(res, authUri(req));
      return;
    }
    const l = locals(res);
    l.token = token;
    l.admin = state.isAdminToken(token);
    next();
  };
}

export function parseVersion(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function cmpVersion(a: string, b: string): number {
  const [am, an] = parseVersion(a) ?? [0, 0];
  const [bm, bn] = parseVersion(b) ?? [0, 0];
  return am !== bm ? am - bm : an - bn;
}

/** True when this request's microversion is at least `v`. */
export function mvAtLeast(res: Response, v: string): boolean {
  return cmpVersion(locals(res).mv, v) >= 0;
}

/** The version a client asked for in `OpenStack-API-Version: <service> X` (or Nova's legacy header). */
export function requestedVersion(req: Request, service: string, legacyHeader?: string): string | undefined {
  const header = req.get("OpenStack-API-Version");
  if (header) {
    for (const part of header.split(",")) {
      const [svc, ver] = part.trim().split(/\s+/);
      if (svc?.toLowerCase() === service && ver) return ver;
    }
  }
  if (legacyHeader) {
    const legacy = req.get(legacyHeader);
    if (legacy) return legacy.trim();
  }
  return undefined;
}

/** Nova's microversion negotiation: default 2.1, `latest` = max, 400 malformed, 406 out of range. */
export function novaMicroversion(state: SandboxState): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const { minMicroversion: min, maxMicroversion: max } = state.opts;
    let v = requestedVersion(req, "compute", "X-OpenStack-Nova-API-Version") ?? "2.1";
    if (v.toLowerCase() === "latest") v = max;
    res.set("OpenStack-API-Version", `compute ${v}`);
    res.set("X-OpenStack-Nova-API-Version", v);
    res.set("Vary", "OpenStack-API-Version");
    if (!parseVersion(v)) {
      novaError(res, 400, `API Version String ${v} is of invalid format. Must be of format MajorNum.MinorNum.`);
      return;
    }
    if (cmpVersion(v, min) < 0 || cmpVersion(v, max) > 0) {
      sendJson(
        res,
        406,
        { computeFault: { code: 406, message: `Version ${v} is not supported by the API. Minimum is ${min} and maximum is ${max}.` } },
        "application/json; charset=UTF-8",
      );
      return;
    }
    locals(res).mv = v;
    next();
  };
}

/** 403 as nova-api words it when the policy refuses. */
export function requireAdmin(res: Response, policy: string): boolean {
  if (locals(res).admin) return true;
  novaError(res, 403, `Policy doesn't allow ${policy} to be performed.`);
  return false;
}

// ---- JSON-schema validation with nova-api's messages -------------------------------------------

export type JsonSchema =
  | {
      type: "object";
      nullable?: boolean;
      properties?: Record<string, JsonSchema>;
      required?: string[];
      additionalProperties?: boolean;
    }
  | { type: "string"; enum?: string[]; minLength?: number; maxLength?: number }
  /** nova.api.validation.parameter_types.boolean: a boolean or one of its string spellings. */
  | { type: "boolean-like" };

const BOOLEAN_SPELLINGS: (boolean | string)[] = [
  true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
  false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no",
];

/** Python's repr, as jsonschema puts values in its messages. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(v) ?? "None";
}

function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

/** The first error jsonschema would report, worded as nova-api words it; null when valid. */
export function validateBody(body: unknown, schema: JsonSchema): string | null {
  const err = check(body, schema, []);
  if (!err) return null;
  if (err.path.length === 0) return err.message;
  return `Invalid input for field/attribute ${err.path[err.path.length - 1]}. Value: ${pyStr(err.instance)}. ${err.message}`;
}

interface SchemaError {
  path: string[];
  instance: unknown;
  message: string;
}

function check(v: unknown, s: JsonSchema, path: string[]): SchemaError | null {
  const fail = (message: string): SchemaError => ({ path, instance: v, message });
  switch (s.type) {
    case "boolean-like":
      return BOOLEAN_SPELLINGS.includes(v as boolean | string) ? null : fail(`${pyRepr(v)} is not one of ${pyRepr(BOOLEAN_SPELLINGS)}`);
    case "string": {
      if (typeof v !== "string") return fail(`${pyRepr(v)} is not of type 'string'`);
      if (s.enum && !s.enum.includes(v)) return fail(`${pyRepr(v)} is not one of ${pyRepr(s.enum)}`);
      if (s.minLength !== undefined && v.length < s.minLength) return fail(`${pyRepr(v)} is too short`);
      if (s.maxLength !== undefined && v.length > s.maxLength) return fail(`${pyRepr(v)} is too long`);
      return null;
    }
    case "object": {
      if (v === null && s.nullable) return null;
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        return fail(`${pyRepr(v)} is not of type ${s.nullable ? "'object', 'null'" : "'object'"}`);
      }
      const obj = v as Record<string, unknown>;
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (k in obj) {
          const e = check(obj[k], sub, [...path, k]);
          if (e) return e;
        }
      }
      for (const r of s.required ?? []) if (!(r in obj)) return fail(`${pyRepr(r)} is a required property`);
      if (s.additionalProperties === false) {
        const extras = Object.keys(obj)
          .filter((k) => !(k in (s.properties ?? {})))
          .sort();
        if (extras.length > 0) {
          return fail(`Additional properties are not allowed (${extras.map(pyRepr).join(", ")} ${extras.length === 1 ? "was" : "were"} unexpected)`);
        }
      }
      return null;
    }
  }
}

export function isTrueish(v: unknown): boolean {
  return v === true || (typeof v === "string" && /^(true|1|on|yes)$/i.test(v));
}

export function isUuidLike(s: string): boolean {
  return /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(s);
}

/** Query parameter as a string (express 5 parses `a=1&a=2` to an array: Nova takes the last). */
export function queryParam(req: Request, name: string): string | undefined {
  const v: unknown = (req.query as Record<string, unknown>)[name];
  if (Array.isArray(v)) return v.length > 0 ? String(v[v.length - 1]) : undefined;
  return typeof v === "string" ? v : undefined;
}

// ---- query parameters of the list APIs ---------------------------------------------------------

/** Every value of a query parameter (express 5 parses `a=1&a=2` to an array). */
export function queryValues(req: Request, name: string): string[] {
  const v: unknown = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => String(x as string));
}

// iso8601.parse_date's grammar (what oslo's parse_isotime accepts): YYYY[-MM[-DD[Thh[:mm[:ss[.f]]][tz]]]].
const ISO8601 =
  /^(\d{4})(?:(?:-(\d{1,2})|(\d{2})(?!$))(?:(?:-(\d{1,2})|(\d{2}))(?:[ T](\d{2})(?::?(\d{2}))?(?::?(\d{1,2})(?:[.,](\d+))?)?(Z|([-+])(\d{2}):?(\d{2})?)?)?)?)?$/;

/** An ISO 8601 date-time as Nova reads it (UTC when no zone is given), ms; undefined when it is not one. */
export function parseIsoTime(raw: string): number | undefined {
  const m = ISO8601.exec(raw);
  if (!m) return undefined;
  const num = (v: string | undefined, dflt: number): number => (v === undefined ? dflt : Number(v));
  const year = num(m[1], 1);
  const month = num(m[2] ?? m[3], 1);
  const day = num(m[4] ?? m[5], 1);
  const hour = num(m[6], 0);
  const minute = num(m[7], 0);
  const second = num(m[8], 0);
  const ms = m[9] ? Math.floor(Number(`0.${m[9]}`) * 1000) : 0;
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const d = new Date(t);
  // Out-of-range fields (month 13, 25:00…) are a ValueError in Python: not a date-time.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return undefined;
  if (d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second) return undefined;
  let offset = 0;
  if (m[10] && m[10] !== "Z") {
    const sign = m[11] === "-" ? -1 : 1;
    const tzh = Number(m[12]);
    const tzm = num(m[13], 0);
    if (tzh > 23 || tzm > 59) return undefined;
    offset = sign * (tzh * 60 + tzm) * 60_000;
  }
  return t - offset;
}

/**
 * A `changes-since` (or other `date-time` format) query parameter validated as nova-api's
 * query schema does: undefined when absent, null when the 400 was sent, else the instant
 * (the last value when several are allowed and given, as Nova takes it). `single`: the
 * schema allows one value only (`single_param`, e.g. os-migrations from 2.59).
 */
export function dateTimeParam(req: Request, res: Response, name: string, opts: { single: boolean }): number | undefined | null {
  const values = queryValues(req, name);
  if (values.length === 0) return undefined;
  for (const v of values) {
    if (parseIsoTime(v) === undefined) {
      novaError(res, 400, `Invalid input for query parameters ${name}. Value: ${v}. ${pyRepr(v)} is not a 'date-time'`);
      return null;
    }
  }
  if (opts.single && values.length > 1) {
    novaError(res, 400, `Invalid input for query parameters ${name}. Value: ${pyRepr(values)}. ${pyRepr(values)} is too long`);
    return null;
  }
  return parseIsoTime(values[values.length - 1]!)!;
}

/** The instant of an `updated_at` as the database compares it: whole seconds (DATETIME). */
export function dbSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
