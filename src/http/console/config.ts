import { z } from "zod";

/** The `console` section: the browser console served on `server.listen` under /console. */
export const consoleSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe("Serve the console at /console on the server's listen address. It opens only with the admin token (a login form); `false` removes every /console route."),
  session_ttl_seconds: z
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600)
    .default(8 * 3600)
    .describe("How long a login lasts; then the browser is asked for the admin token again. Sessions live in this process's memory: a restart ends them all."),
  secure_cookie: z
    .enum(["auto", "always"])
    .default("auto")
    .describe("The session cookie's Secure flag: `auto` sets it when the request came over TLS as the proxy in front says (`X-Forwarded-Proto: https`); `always` sets it whatever the request says (a TLS proxy that sends no such header)."),
});

export type ConsoleConfig = z.output<typeof consoleSchema>;
