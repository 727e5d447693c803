import { z } from "zod";
import { Secret } from "../util/secret.js";

/** A secret string: given inline, through `${ENV}`, or as `<key>_file: PATH`. Never printed. */
export const secret = () =>
  z
    .string()
    .min(1, "must not be empty")
    .transform((s) => new Secret(s));

/** A non-negative number of seconds. */
export const seconds = (def: number) => z.number().nonnegative().default(def);

/** host:port with a numeric port; the host may be empty for all interfaces. */
export const listenAddress = () =>
  z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, "expected HOST:PORT, e.g. 127.0.0.1:9095");

export const url = () =>
  z.string().refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch {
      return false;
    }
  }, "expected an http(s) URL");
