import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type Logger, type DestinationStream, type LoggerOptions } from "pino";

export type { Logger };

/**
 * Fields every log line written inside a recovery carries (`recovery`, `host`), however deep
 * the call: the runner runs each stage inside `logContext.run(...)`, so the drivers' own
 * lines (a fence device's attempts, an SMTP retry) name the recovery too.
 */
export const logContext = new AsyncLocalStorage<Record<string, string>>();

function contextFields(mergeObject: object, _level: number, logger: Logger): object {
  const ctx = logContext.getStore();
  if (!ctx) return {};
  const bound = logger.bindings();
  const out: Record<string, string> = {};
  // Keys already bound by a child logger or given in the call are not repeated.
  for (const [k, v] of Object.entries(ctx)) if (!(k in bound) && !(k in mergeObject)) out[k] = v;
  return out;
}

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
    mixin: contextFields,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that writes nothing (tests, CLI one-shots). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
