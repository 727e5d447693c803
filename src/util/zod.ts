import { z } from "zod";
import { Secret } from "./secret.js";

/** A secret string: given inline, through `${ENV}`, or as `<key>_file: PATH`. Never printed. */
export const secret = () =>
  z
    .string()
    .min(1, "must not be empty")
    .transform((s) => new Secret(s));

/** A non-negative number of seconds. */
export const seconds = (def: number) => z.number().nonnegative().default(def);

/**
 * The shortest credential lifeboat accepts for its own webhook and control API: 16
 * characters (say 24 random bytes in hex, `openssl rand -hex 24`, is plenty).
 */
export const MIN_TOKEN_LENGTH = 16;

/** A credential lifeboat itself checks (webhook, control API): a secret of at least MIN_TOKEN_LENGTH characters. */
export const token = () =>
  z
    .string()
    .min(1, "must not be empty")
    .min(MIN_TOKEN_LENGTH, `too short: at least ${MIN_TOKEN_LENGTH} characters (e.g. the output of openssl rand -hex 24)`)
    .transform((s) => new Secret(s));

/** host:port with a port of 0–65535 (0: any free port); the host may be empty for all interfaces. */
export const listenAddress = () =>
  z.string().superRefine((s, ctx) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(s);
    if (!m) ctx.addIssue({ code: "custom", message: "expected HOST:PORT, e.g. 127.0.0.1:9095" });
    else if (Number(m[2]) > 65535) ctx.addIssue({ code: "custom", message: `port ${m[2]} is out of range (0–65535; 0: any free port)` });
  });

export const url = () =>
  z.string().refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch {
      return false;
    }
  }, "expected an http(s) URL");
