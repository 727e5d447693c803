import express, { type ErrorRequestHandler, type Request, type Response, type Router } from "express";
import { hostEventsInSlices, type HostMapping } from "../intake/host-events.js";
import { parseWebhookPayload, payloadProblems } from "../intake/alertmanager-payload.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { requireAuth, type WebhookCredentials } from "./auth.js";

export interface AlertsRouteDeps {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  auth: WebhookCredentials | "none";
  bodyLimitBytes: number;
  mapping: HostMapping;
  triggerAlertnames: readonly string[];
  /** Called after events were journaled (starts processing on the leader). */
  onJournaled: () => void;
}

/**
 * `POST /api/v1/alerts`: Alertmanager's webhook. The answer comes fast and tells
 * Alertmanager exactly what to do: 202 once every alert is journaled; 4xx for input that
 * will never become valid (Alertmanager does not retry those); 503 when the journal could
 * not be written (Alertmanager retries 5xx).
 */
export function alertsRouter(deps: AlertsRouteDeps): Router {
  const router = express.Router();
  router.post(
    "/api/v1/alerts",
    (req, res, next) => {
      res.on("finish", () => deps.metrics.webhookRequests.inc({ code: String(res.statusCode) }));
      next();
    },
    requireAuth(deps.auth, "lifeboat webhook"),
    (req, res, next) => {
      // Without Content-Length or Transfer-Encoding a request has no body (an HTTP/1.0 POST
      // sent that way included): say so, rather than judge a content type with nothing behind it.
      if (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined) {
        res.status(411).json({ error: "no request body: send the Alertmanager payload with a Content-Length (or Transfer-Encoding: chunked)" });
        return;
      }
      if (!req.is("application/json")) {
        res.status(415).json({ error: `content type must be application/json (got ${req.headers["content-type"] ?? "none"})` });
        return;
      }
      next();
    },
    // Not strict: any JSON value parses, and one that is not an object is named as such below.
    express.json({ limit: deps.bodyLimitBytes, strict: false, type: () => true }),
    (req: Request, res: Response) => {
      void handle(req, res, deps);
    },
  );
  router.use("/api/v1/alerts", bodyErrors(deps.logger));
  return router;
}

interface BodyError extends Error {
  type?: string;
  status?: number;
  code?: string;
}

/**
 * A body that cannot be decompressed (a Content-Encoding it is not) is the sender's fault:
 * 400 naming the encoding, logged as a refusal, not as lifeboat's error. Other body errors
 * go on to the server's handler.
 */
function bodyErrors(logger: Logger): ErrorRequestHandler {
  return (err: BodyError, req, res, next) => {
    const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
    if (err.type === undefined && err.status === 400 && encoding !== "identity") {
      const error = `request body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${err.message}`;
      logger.warn({ error, code: err.code }, "webhook payload rejected");
      res.status(400).json({ error });
      return;
    }
    next(err);
  };
}

/** "null", "a string", "an array"…: what a JSON value is, for a message. */
function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

async function handle(req: Request, res: Response, deps: AlertsRouteDeps): Promise<void> {
  if (req.body === null || typeof req.body !== "object" || Array.isArray(req.body)) {
    const error = `the body must be a JSON object (an Alertmanager webhook payload), got ${jsonKind(req.body)}`;
    deps.logger.warn({ error }, "webhook payload rejected");
    res.status(400).json({ error });
    return;
  }
  const parsed = await parseWebhookPayload(req.body);
  if (!parsed.success) {
    const problems = payloadProblems(parsed.error, req.body);
    deps.logger.warn({ problems, receiver: typeof req.body === "object" && req.body !== null ? (req.body as Record<string, unknown>).receiver : undefined }, "webhook payload rejected");
    res.status(400).json({ error: `invalid Alertmanager payload: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`, problems });
    return;
  }
  const payload = parsed.data;
  const events = await hostEventsInSlices(payload, deps.mapping, new Date(deps.clock.now()).toISOString());
  try {
    const appended = await deps.store.appendEvents(events);
    for (const e of events) deps.metrics.alertsReceived.inc({ status: e.status, trigger: String(deps.triggerAlertnames.includes(e.alertname)) });
    const duplicates = appended.filter((a) => a.duplicate).length;
    res.status(202).json({ accepted: appended.length, duplicates, events: appended.map((a) => a.event.id) });
    deps.logger.debug({ groupKey: payload.groupKey, alerts: events.length, duplicates }, "webhook journaled");
    // A re-delivery adds no event to route: the first delivery already woke the coordinator
    // (whose periodic pass is the safety net), so repeats cost no routing pass.
    if (duplicates < appended.length) deps.onJournaled();
  } catch (err) {
    deps.logger.error({ err: errorMessage(err) }, "could not journal webhook events; answering 503 so Alertmanager retries");
    res.status(503).json({ error: "could not store the alerts; retry later" });
  }
}
