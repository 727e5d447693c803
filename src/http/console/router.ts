import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { Logger } from "../../logging.js";
import { systemClock, type Clock } from "../../util/clock.js";
import { errorMessage } from "../../util/errors.js";
import type { Secret } from "../../util/secret.js";
import { safeEqual } from "../auth.js";
import { actionInput, confirmView, isAction, perform } from "./actions.js";
import type { ConsoleConfig } from "./config.js";
import type { ConsoleDeps } from "./deps.js";
import { LiveHub, type LiveHubOptions } from "./live.js";
import { HOST_NAME, hostPage, listPage, liveViewFor, overviewPage, parseListFilter, recoveryPage, type Page } from "./pages.js";
import { ConsoleRenderer } from "./render.js";
import { LoginThrottle, SessionStore, csrfMatches, type Session } from "./sessions.js";

export interface ConsoleOptions {
  deps: ConsoleDeps;
  adminToken: Secret;
  config: ConsoleConfig;
  logger: Logger;
  clock?: Clock;
  live?: LiveHubOptions;
}

export interface Console {
  router: Router;
  hub: LiveHub;
  sessions: SessionStore;
  close(): void;
}

const COOKIE = "lifeboat_session";

/** No script, style, frame or form target but the console's own; nothing inline. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

interface ConsoleLocals {
  session: Session;
  sessionId: string;
}

/**
 * The console: server-rendered pages under /console, live updates by server-sent events,
 * a login form that trades the admin token for a session cookie, and operator actions
 * behind a confirmation page and a per-session CSRF token. It reads and acts only through
 * ConsoleDeps.
 */
export function createConsole(opts: ConsoleOptions): Console {
  const { deps, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const log = logger.child({ component: "console" });
  const renderer = new ConsoleRenderer();
  const sessions = new SessionStore(opts.config.session_ttl_seconds * 1000, clock);
  const throttle = new LoginThrottle(clock);
  const hub = new LiveHub((l) => deps.onChange(l), log, opts.live);
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: 16 * 1024, parameterLimit: 200 });

  router.use("/console", (_req, res, next) => {
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Cache-Control", "no-store");
    next();
  });

  router.get("/console/assets/:name", (req, res) => {
    const a = renderer.assets.get(req.params.name);
    if (!a) {
      res.status(404).type("text/plain").send("no such asset");
      return;
    }
    res.setHeader("Cache-Control", req.query.v === a.version ? "public, max-age=31536000, immutable" : "no-cache");
    res.type(a.type).send(a.body);
  });

  // ---- login ------------------------------------------------------------------------------

  router.get("/console/login", (req, res) => {
    const next = safeNext(req.query.next);
    if (currentSession(req)) {
      res.redirect(303, next);
      return;
    }
    sendPage(res, 200, "login", "Log in", { next });
  });

  router.post("/console/login", form, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const client = req.socket.remoteAddress ?? "?";
    const wait = throttle.waitMs(client);
    if (wait > 0) {
      res.setHeader("Retry-After", String(Math.ceil(wait / 1000)));
      sendPage(res, 429, "login", "Log in", { next, error: `Too many failed logins from ${client}: try again in ${Math.ceil(wait / 1000)} s.` });
      return;
    }
    const token = typeof body.token === "string" ? body.token : "";
    if (!token || !safeEqual(token, opts.adminToken.reveal())) {
      throttle.failed(client);
      log.warn({ client }, "console login refused: not the admin token");
      sendPage(res, 401, "login", "Log in", { next, error: "That is not the admin token." });
      return;
    }
    throttle.succeeded(client);
    const name = typeof body.name === "string" && /^[A-Za-z0-9._-]{1,40}$/.test(body.name) ? body.name : "";
    const actor = name ? `${name}@console` : "console";
    const { id } = sessions.create(actor);
    res.setHeader("Set-Cookie", cookie(req, id, opts.config.session_ttl_seconds, opts.config.secure_cookie === "always"));
    log.info({ client, actor }, "console login");
    res.redirect(303, next);
  });

  // Everything below needs a session.
  router.use("/console", (req, res, next) => {
    const found = currentSession(req);
    if (found) {
      (res.locals as ConsoleLocals).session = found.session;
      (res.locals as ConsoleLocals).sessionId = found.id;
      next();
      return;
    }
    if (req.method === "GET" && req.path !== "/events") {
      res.redirect(303, `/console/login?next=${encodeURIComponent(safeNext(req.originalUrl))}`);
      return;
    }
    sendPage(res, 401, "error", "Log in first", { heading: "Log in first", message: "This needs a console session: log in with the admin token. Nothing was done." });
  });

  // State-changing requests: the session's CSRF token, and no other site as their origin.
  const csrf = (req: Request, res: Response, next: NextFunction): void => {
    const { session } = res.locals as ConsoleLocals;
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!sameOrigin(req) || !csrfMatches(session, body._csrf)) {
      log.warn({ path: req.path, actor: session.actor }, "console request refused: missing or wrong CSRF token, or another site's origin");
      sendPage(res, 403, "error", "Refused", { heading: "Refused", message: "This request did not come from a console page of this session (CSRF check). Nothing was done." });
      return;
    }
    next();
  };

  router.post("/console/logout", form, csrf, (req, res) => {
    sessions.destroy((res.locals as ConsoleLocals).sessionId);
    res.setHeader("Set-Cookie", cookie(req, "", 0, opts.config.secure_cookie === "always"));
    res.redirect(303, "/console/login");
  });

  // ---- pages ------------------------------------------------------------------------------

  router.get("/console", (_req, res) => guarded(res, async () => sendLivePage(res, await overviewPage(deps))));

  router.get("/console/recoveries", (req, res) =>
    guarded(res, async () => {
      const f = parseListFilter(req.query);
      if ("error" in f) return sendPage(res, 400, "error", "Bad request", { heading: "Bad request", message: f.error });
      sendLivePage(res, await listPage(deps, f));
    }),
  );

  router.get("/console/recoveries/:id", (req, res) =>
    guarded(res, async () => {
      const page = await recoveryPage(deps, req.params.id);
      if (!page) return sendPage(res, 404, "error", "Not found", { heading: "Not found", message: `no recovery ${req.params.id}` });
      sendLivePage(res, page);
    }),
  );

  router.get("/console/hosts/:host", (req, res) =>
    guarded(res, async () => {
      if (!HOST_NAME.test(req.params.host)) return sendPage(res, 400, "error", "Bad request", { heading: "Bad request", message: "host: expected a host name" });
      sendLivePage(res, await hostPage(deps, req.params.host));
    }),
  );

  router.get("/console/events", (req, res) => {
    const { sessionId } = res.locals as ConsoleLocals;
    const view = liveViewFor(deps, renderer, req.query);
    if ("error" in view) {
      res.status(400).type("text/plain").send(view.error);
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    res.write("retry: 3000\n\n");
    const leave = hub.join(view, {
      send: (event, data) => {
        res.write(`event: ${event}\ndata: ${data}\n\n`);
      },
      valid: () => sessions.get(sessionId) !== null,
      close: () => res.end(),
    });
    if (!leave) {
      res.end("event: busy\ndata: {}\n\n");
      return;
    }
    res.on("close", leave);
  });

  // ---- actions ----------------------------------------------------------------------------

  router.get("/console/confirm/:action", (req, res) =>
    guarded(res, async () => {
      const action = req.params.action;
      const input = actionInput(req.query);
      if (!isAction(action) || "error" in input) {
        return sendPage(res, isAction(action) ? 400 : 404, "error", "Bad request", { heading: "Bad request", message: "error" in input ? input.error : `no action ${action}` });
      }
      const view = await confirmView(deps, action, input);
      const back = safeNext(req.query.back ?? (input.ids.length === 1 && action !== "approve" ? `/console/recoveries/${input.ids[0]}` : input.host ? `/console/hosts/${input.host}` : "/console"));
      sendPage(res, 200, "confirm", view.heading, { ...view, back });
    }),
  );

  router.post("/console/actions/:action", form, csrf, (req, res) =>
    guarded(res, async () => {
      const { session } = res.locals as ConsoleLocals;
      const action = typeof req.params.action === "string" ? req.params.action : "";
      const body = (req.body ?? {}) as Record<string, unknown>;
      const input = actionInput(body);
      if (!isAction(action) || "error" in input) {
        return sendPage(res, isAction(action) ? 400 : 404, "error", "Bad request", { heading: "Bad request", message: "error" in input ? input.error : `no action ${action}` });
      }
      const result = await perform(deps, action, input, session.actor);
      log.warn({ action, actor: session.actor, ids: input.ids, host: input.host || undefined, ok: result.ok, ...(result.ok ? {} : { status: result.status }) }, "console action");
      session.flash = result.ok ? { kind: "ok", text: result.message } : { kind: "bad", text: `Refused (${result.status}): ${result.message}` };
      res.redirect(303, safeNext(body.back));
    }),
  );

  return {
    router,
    hub,
    sessions,
    close: () => hub.closeAll(),
  };

  // ---- helpers ----------------------------------------------------------------------------

  function currentSession(req: Request): { id: string; session: Session } | null {
    const id = readCookie(req.headers.cookie, COOKIE);
    const session = sessions.get(id);
    return session && id ? { id, session } : null;
  }

  function sendLivePage(res: Response, page: Page): void {
    sendPage(res, 200, page.template, page.title, {
      ...page.view,
      live: `/console/events?${page.live}`,
      navOverview: page.nav === "overview",
      navRecoveries: page.nav === "recoveries",
    });
  }

  function sendPage(res: Response, status: number, template: string, title: string, view: Record<string, unknown>): void {
    const locals = res.locals as Partial<ConsoleLocals>;
    const session = locals.session;
    const flash = session?.flash ?? null;
    if (session) delete session.flash;
    const html = renderer.page(template, { ...view, title, flash, session: session ? { actor: session.actor, csrf: session.csrf } : null, actor: session?.actor, csrf: session?.csrf });
    res.status(status).type("html").send(html);
  }

  async function guarded(res: Response, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      log.error({ err: errorMessage(err) }, "console page failed");
      if (!res.headersSent) sendPage(res, 500, "error", "Error", { heading: "Something failed", message: "The journal could not be read; lifeboat logged the error. Try again." });
    }
  }
}

/** Where to go after a login or an action: a console path, never another site. */
export function safeNext(v: unknown): string {
  if (typeof v !== "string") return "/console";
  return /^\/console(?:[/?][^\s\\]*)?$/.test(v) && !v.startsWith("/console//") && !v.includes("..") ? v : "/console";
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Path
 * /console (the API never sees it), Secure when the browser reached lifeboat over TLS.
 */
function cookie(req: Request, value: string, maxAgeSeconds: number, always: boolean): string {
  const proto = String(req.headers["x-forwarded-proto"] ?? "").split(",")[0]?.trim();
  const secure = always || proto === "https" || (req.socket as { encrypted?: boolean }).encrypted === true;
  return `${COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? "; Secure" : ""}`;
}

/**
 * A browser says where a request comes from: `Sec-Fetch-Site` where it sends it (every
 * current one), else `Origin` against the host asked for. Another site's request is
 * refused even before its (missing) CSRF token is looked at.
 */
function sameOrigin(req: Request): boolean {
  const site = req.get("sec-fetch-site");
  if (site) return site === "same-origin" || site === "none";
  const origin = req.get("origin");
  if (!origin) return true;
  try {
    return new URL(origin).host === (req.get("x-forwarded-host") ?? req.get("host"));
  } catch {
    return false;
  }
}
