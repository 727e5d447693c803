import { pino, type Logger, type DestinationStream, type LoggerOptions } from "pino";

export type { Logger };

/**
 * Structured JSON logs. Every line of a recovery carries `recovery` and `host` (child
 * loggers made by the coordinator). Secrets are `Secret` objects that print as
 * "[redacted]"; the redact list is a second net for raw values under well-known keys.
 */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "req.headers.authorization",
  'req.headers["x-auth-token"]',
  "env.IPMITOOL_PASSWORD",
  "env.IPMI_PASSWORD",
];

export function createLogger(opts: { level?: string; destination?: DestinationStream; name?: string } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    name: opts.name ?? "lifeboat",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that writes nothing (tests, CLI one-shots). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
