import express, { type ErrorRequestHandler, type Express, type Router } from "express";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { ReadinessCheck } from "../util/readiness.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import { alertsRouter, type AlertsRouteDeps } from "./alerts.js";
import { controlRouter, type ControlDeps } from "./control.js";

export interface HttpDeps {
  logger: Logger;
  metrics: Metrics;
  store: Store;
  alerts: AlertsRouteDeps;
  control: ControlDeps;
  /** The console in the browser (/console), when enabled. */
  console?: Router;
  /** Extra readiness checks (cheap ones: leader known, cloud answered…); `required: false` ones only inform. */
  readiness?: () => Promise<Record<string, ReadinessCheck>>;
}

/** The HTTP surface: webhook, control API, console, health, metrics. */
export function createHttpApp(deps: HttpDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const checks: Record<string, ReadinessCheck> = {};
    try {
      await deps.store.ping();
      checks.store = { ok: true };
    } catch (err) {
      checks.store = { ok: false, detail: errorMessage(err) };
    }
    Object.assign(checks, (await deps.readiness?.()) ?? {});
    // Unready (503) only when a required check fails: the store, without which no alert is journaled.
    const ok = Object.values(checks).every((c) => c.ok || c.required === false);
    const all = Object.values(checks).every((c) => c.ok);
    res.status(ok ? 200 : 503).json({ status: ok ? (all ? "ready" : "degraded") : "not ready", checks });
  });
  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  app.use(alertsRouter(deps.alerts));
  app.use(controlRouter(deps.control));
  if (deps.console) app.use(deps.console);

  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });
  app.use(errorHandler(deps.logger));
  return app;
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
  /** http-errors: whether the message is meant for the client. */
  expose?: boolean;
}

/** Turn body-parser failures into 4xx answers that name the problem. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: BodyParserError, req, res, _next) => {
    const type = err.type ?? "";
    if (type === "entity.too.large") {
      res.status(413).json({ error: `request body larger than the limit of ${err.limit ?? "?"} bytes` });
      return;
    }
    if (type === "entity.parse.failed") {
      res.status(400).json({ error: `malformed JSON: ${err.message}` });
      return;
    }
    if (type === "encoding.unsupported" || type === "charset.unsupported") {
      res.status(415).json({ error: err.message });
      return;
    }
    if (type === "request.aborted" || type === "request.size.invalid") {
      res.status(400).json({ error: err.message });
      return;
    }
    const status = err.status && err.status >= 400 && err.status < 600 ? err.status : 500;
    if (status < 500) {
      // The client's fault (http-errors' message is meant for it): a refusal, not lifeboat's error.
      logger.warn({ err: errorMessage(err), path: req.path, status }, "request refused");
      if (!res.headersSent) res.status(status).json({ error: err.expose === false ? "bad request" : errorMessage(err) });
      return;
    }
    logger.error({ err: errorMessage(err), path: req.path }, "request failed");
    if (!res.headersSent) res.status(status).json({ error: "internal error" });
  };
}
