import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import type { Secret } from "../util/secret.js";

/** Compare two strings in time independent of where they differ (hash first: equal lengths). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export interface WebhookCredentials {
  bearer?: Secret;
  basic?: { username: string; password: Secret };
}

/** Check `Authorization` the way Alertmanager's http_config sends it. */
export function checkAuthorization(header: string | undefined, creds: WebhookCredentials): boolean {
  if (!header) return false;
  const space = header.indexOf(" ");
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && creds.bearer) return safeEqual(value, creds.bearer.reveal());
  if (scheme === "basic" && creds.basic) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    // Evaluate both comparisons: no early exit on the user name.
    const userOk = safeEqual(decoded.slice(0, colon), creds.basic.username);
    const passOk = safeEqual(decoded.slice(colon + 1), creds.basic.password.reveal());
    return userOk && passOk;
  }
  return false;
}

export function requireAuth(creds: WebhookCredentials | "none", realm: string): RequestHandler {
  if (creds === "none") return (_req, _res, next) => next();
  const challenge = [creds.bearer ? `Bearer realm="${realm}"` : null, creds.basic ? `Basic realm="${realm}"` : null].filter(Boolean).join(", ");
  return (req, res, next) => {
    const header = req.headers.authorization;
    if (checkAuthorization(header, creds)) {
      next();
      return;
    }
    res.setHeader("WWW-Authenticate", challenge);
    res.status(401).json({ error: header ? "invalid credentials" : "missing credentials (Authorization header)" });
  };
}
