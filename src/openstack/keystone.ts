import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import pRetry from "p-retry";
import type { Logger } from "../logging.js";
import { abortReason } from "../util/abort.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { Secret } from "../util/secret.js";
import { joinEndpoint, selectEndpoint, type CatalogEntry } from "./catalog.js";
import type { OpenStackConfig } from "./config.js";
import {
  CredentialsError,
  describeCredentials,
  keystoneAuthBody,
  resolveCredentials,
  type ResolvedCredentials,
} from "./credentials.js";
import { isPermanent } from "../domain/errors.js";
import { OpenStackConnectionError, serviceErrorMessage } from "./errors.js";
import { httpExchange, type HttpAnswer } from "../util/http-exchange.js";
import { RequestPacer } from "./pacer.js";
import {
  OpenStackApiError,
  type OpenStackRequest,
  type OpenStackResponse,
  type OpenStackSession,
  type ServiceType,
} from "./types.js";

/**
 * The Keystone v3 session every OpenStack call of lifeboat goes through: it authenticates
 * (password or application credential), keeps the token and renews it before it expires,
 * re-authenticates once when a service answers 401, and finds endpoints in the catalog.
 * Every request to Nova goes out at the pace of one `RequestPacer` (config
 * `openstack.nova_rate_limit`), which also pauses them all when Nova answers 429 or 503
 * with `Retry-After`. Tokens and passwords are `Secret`s: they reach only the HTTP headers/body, never a log.
 *
 * A call is retried here only for what its caller cannot see (engine/retry-policy.ts): a
 * token refused (401: authenticate again, once), an idempotent call whose connection broke
 * before any answer (sent again at once, once), and an idempotent call to Nova answered 429
 * or 503 with `Retry-After` (sent again once the pause Nova asked for is over). One resend
 * at most; everything else — a 5xx, a timeout, a second failure — reaches the caller, whose
 * step policy or poll loop decides. Getting a token is the exception: no step sees it, so
 * authentication retries transient failures itself, `openstack.retries` times.
 */
export interface KeystoneSessionDeps {
  logger: Logger;
  /** Environment for OS_* / OS_CLOUD / OS_CLIENT_CONFIG_FILE (default: process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  homeDir?: string;
  clock?: Clock;
  /** First delay between authentication retries, ms (doubles each retry, jittered). Default 500. */
  retryBaseMs?: number;
  /** Longest delay between authentication retries, ms. Default 8000. */
  retryMaxMs?: number;
  /** The pace of requests to Nova (default: one made from `openstack.nova_rate_limit`). */
  novaPacer?: RequestPacer;
}

export interface TokenInfo {
  methods: string[];
  userId?: string;
  userName?: string;
  projectId?: string;
  projectName?: string;
  roles: string[];
  issuedAt: string;
  expiresAt: string;
  /** When lifeboat will renew it (local clock, ISO). */
  renewAt: string;
}

export interface KeystoneSession extends OpenStackSession {
  /** Resolved credentials (secrets inside print as "[redacted]"). */
  readonly credentials: ResolvedCredentials;
  /** One line for the start-up log. */
  describe(): string;
  /** Authenticate now (also used at start-up to fail fast on bad credentials). */
  authenticate(signal?: AbortSignal): Promise<TokenInfo>;
  /** The base URL used for a service (catalog or endpoint_override). */
  endpoint(service: ServiceType, signal?: AbortSignal): Promise<string>;
  tokenInfo(): TokenInfo | undefined;
  /** Forget the cached token; the next request authenticates again. */
  invalidateToken(): void;
  /** Release keep-alive sockets. */
  close(): void;
}

interface TokenState {
  token: Secret;
  renewAtMs: number;
  expiresAtMs: number;
  catalog: CatalogEntry[];
  info: TokenInfo;
}


interface KeystoneTokenBody {
  token?: {
    methods?: string[];
    user?: { id?: string; name?: string };
    project?: { id?: string; name?: string };
    roles?: { id?: string; name?: string }[];
    catalog?: CatalogEntry[];
    issued_at?: string;
    expires_at?: string;
  };
}

/** Renew this long before expiry: 10 % of the lifetime, at most 5 minutes. */
export function renewalMargin(lifetimeMs: number): number {
  return Math.min(5 * 60_000, Math.max(0, lifetimeMs * 0.1));
}

const USER_AGENT = "lifeboat (OpenStack compute HA)";

export function createKeystoneSession(config: OpenStackConfig, deps: KeystoneSessionDeps): KeystoneSession {
  const credentials = resolveCredentials(config, { env: deps.env, cwd: deps.cwd, homeDir: deps.homeDir });
  return new KeystoneSessionImpl(config, credentials, deps);
}

class KeystoneSessionImpl implements KeystoneSession {
  readonly credentials: ResolvedCredentials;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly interface: string;
  private readonly overrides: Partial<Record<ServiceType, string>>;
  private readonly novaPacer: RequestPacer;
  private current: TokenState | undefined;
  private pending: Promise<TokenState> | undefined;

  constructor(config: OpenStackConfig, credentials: ResolvedCredentials, deps: KeystoneSessionDeps) {
    this.credentials = credentials;
    this.log = deps.logger.child({ component: "keystone" });
    this.clock = deps.clock ?? systemClock;
    this.timeoutMs = Math.round(config.timeout_seconds * 1000);
    this.retries = config.retries;
    this.retryBaseMs = deps.retryBaseMs ?? 500;
    this.retryMaxMs = deps.retryMaxMs ?? 8000;
    this.interface = credentials.interface ?? "public";
    this.overrides = config.endpoint_override;
    this.novaPacer =
      deps.novaPacer ??
      new RequestPacer({
        requestsPerSecond: config.nova_rate_limit.requests_per_second,
        maxRetryAfterMs: Math.round(config.nova_rate_limit.max_retry_after_seconds * 1000),
        clock: this.clock,
      });
    let ca: Buffer | undefined;
    if (credentials.caFile) {
      try {
        ca = readFileSync(credentials.caFile);
      } catch (err) {
        throw new CredentialsError(`cannot read the CA bundle ${credentials.caFile}: ${errorMessage(err)}`);
      }
    }
    this.httpAgent = new http.Agent({ keepAlive: true });
    this.httpsAgent = new https.Agent({ keepAlive: true, ca, rejectUnauthorized: !credentials.insecure });
  }

  describe(): string {
    const c = this.credentials;
    return `Keystone ${c.method} auth: ${describeCredentials(c)}, interface ${this.interface}${c.regionName ? `, region ${c.regionName}` : ""}`;
  }

  tokenInfo(): TokenInfo | undefined {
    return this.current?.info;
  }

  invalidateToken(): void {
    this.current = undefined;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async authenticate(signal?: AbortSignal): Promise<TokenInfo> {
    this.current = undefined;
    const state = await this.token(signal);
    return state.info;
  }

  async endpoint(service: ServiceType, signal?: AbortSignal): Promise<string> {
    const override = this.overrides[service];
    if (override) return override;
    const state = await this.token(signal);
    return this.endpointFrom(state, service);
  }

  private endpointFrom(state: TokenState, service: ServiceType): string {
    const override = this.overrides[service];
    if (override) return override;
    try {
      return selectEndpoint(state.catalog, {
        type: service,
        interface: this.interface,
        region: this.credentials.regionName,
        projectId: state.info.projectId,
      });
    } catch (err) {
      if (service === "identity") return this.credentials.authUrl;
      throw err;
    }
  }

  async request<T = unknown>(req: OpenStackRequest): Promise<OpenStackResponse<T>> {
    try {
      return await this.requestOnce<T>(req);
    } catch (err) {
      const idempotent = req.method === "GET" || req.idempotent === true;
      const why = idempotent && !req.signal?.aborted ? resendReason(err) : undefined;
      if (why === undefined) throw err;
      // The pacer holds this resend (and every other call to Nova) until a Retry-After pause is over.
      this.log.warn({ service: req.service, method: req.method, path: stripQuery(req.path), err: errorMessage(err) }, `OpenStack call ${why}: sending it once more`);
      return this.requestOnce<T>(req);
    }
  }

  private async requestOnce<T>(req: OpenStackRequest): Promise<OpenStackResponse<T>> {
    let state = await this.token(req.signal);
    let answer = await this.sendToService(req, state);
    if (answer.status === 401) {
      // The token may have been revoked or expired early: authenticate again, once.
      this.log.info({ service: req.service, method: req.method, path: stripQuery(req.path) }, "token refused (401): re-authenticating once");
      if (this.current === state) this.current = undefined;
      state = await this.token(req.signal);
      answer = await this.sendToService(req, state);
    }
    if (answer.status >= 400 && !req.acceptStatus?.includes(answer.status)) {
      const url = this.urlFor(req, state);
      const message = serviceErrorMessage(answer.data) ?? `HTTP ${answer.status}`;
      const err = new OpenStackApiError(answer.status, message, req.method, url, answer.data);
      if (answer.paused) pausedAnswers.add(err);
      throw err;
    }
    return { status: answer.status, headers: answer.headers, data: answer.data as T };
  }

  private urlFor(req: OpenStackRequest, state: TokenState): string {
    const base = /^https?:\/\//.test(req.path) ? "" : this.endpointFrom(state, req.service);
    return withQuery(joinEndpoint(base, req.path, req.service), req.query);
  }

  private async sendToService(req: OpenStackRequest, state: TokenState): Promise<HttpAnswer & { paused?: true }> {
    const url = this.urlFor(req, state);
    const headers: Record<string, string> = { ...req.headers, "X-Auth-Token": state.token.reveal() };
    if (req.microversion) headers["OpenStack-API-Version"] = `${req.service} ${req.microversion}`;
    if (req.body !== undefined) headers["Content-Type"] = "application/json";
    if (req.service === "compute") await this.novaPacer.take(req.signal);
    const started = this.clock.now();
    const answer = await this.send(req.method, url, headers, req.body, req.signal);
    this.log.debug(
      { service: req.service, method: req.method, url, status: answer.status, ms: this.clock.now() - started, microversion: req.microversion },
      "OpenStack call",
    );
    if (req.service === "compute") {
      const pause = this.novaPacer.noteAnswer(answer.status, answer.headers["retry-after"]);
      if (pause !== undefined) {
        this.log.warn(
          { method: req.method, path: stripQuery(req.path), status: answer.status, retryAfter: answer.headers["retry-after"], pauseMs: pause },
          `Nova asks lifeboat to slow down: every call to Nova waits until ${new Date(this.novaPacer.pausedUntil).toISOString()}`,
        );
        return { ...answer, paused: true };
      }
    }
    return answer;
  }

  /** One HTTP exchange, bounded by the configured timeout; a failure is an OpenStackConnectionError (never one carrying headers). */
  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    if (signal?.aborted) throw abortReason(signal);
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      return await httpExchange({
        method,
        url,
        headers: { Accept: "application/json", "User-Agent": USER_AGENT, ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: combined,
        agents: { http: this.httpAgent, https: this.httpsAgent },
      });
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      const code = errorCode(err);
      const timedOut = timeout.aborted || code === "ETIMEDOUT";
      const what = timedOut ? `timed out after ${this.timeoutMs} ms` : `failed: ${code ?? ""} ${errorMessage(err)}`.trim();
      throw new OpenStackConnectionError(`${method} ${stripQuery(url)} ${what}`, method, url, timedOut, { code });
    }
  }

  /** The current token, or a new one when it is missing or due for renewal (one auth at a time). */
  private async token(signal?: AbortSignal): Promise<TokenState> {
    const now = this.clock.now();
    if (this.current && now < this.current.renewAtMs) return this.current;
    // Never start an authentication nobody waits for: its failure would be an unhandled rejection.
    if (signal?.aborted) throw abortReason(signal);
    if (!this.pending) {
      const reason = this.current ? "renewing token before it expires" : "authenticating";
      this.pending = this.authenticateWithRetry(reason).finally(() => {
        this.pending = undefined;
      });
    }
    return raceAbort(this.pending, signal);
  }

  private async authenticateWithRetry(reason: string): Promise<TokenState> {
    const attempt = (): Promise<TokenState> => this.authenticateOnce(reason);
    if (this.retries === 0) return attempt();
    return pRetry(attempt, {
      retries: this.retries,
      factor: 2,
      minTimeout: this.retryBaseMs,
      maxTimeout: this.retryMaxMs,
      randomize: true,
      // A refusal (bad credentials: 401) is final; an outage, a 5xx or a 429 is worth another try.
      shouldRetry: ({ error }) => !isPermanent(error),
    });
  }

  private async authenticateOnce(reason: string): Promise<TokenState> {
    const url = `${this.credentials.authUrl}/auth/tokens`;
    this.log.debug({ url, method: this.credentials.method }, reason);
    const sentAt = this.clock.now();
    const answer = await this.send("POST", url, { "Content-Type": "application/json" }, keystoneAuthBody(this.credentials), undefined);
    if (answer.status !== 201 && answer.status !== 200) {
      const msg = serviceErrorMessage(answer.data) ?? `HTTP ${answer.status}`;
      const hint = answer.status === 401 ? ` (credentials from ${this.credentials.source} refused)` : "";
      throw new OpenStackApiError(answer.status, `Keystone authentication failed: ${msg}${hint}`, "POST", url, answer.data);
    }
    const tokenValue = answer.headers["x-subject-token"];
    const body = answer.data as KeystoneTokenBody | null;
    const t = body?.token;
    if (!tokenValue || !t?.expires_at) {
      throw new OpenStackApiError(answer.status, "Keystone answered without X-Subject-Token or token.expires_at", "POST", url, null);
    }
    const expires = Date.parse(t.expires_at);
    const issued = t.issued_at ? Date.parse(t.issued_at) : NaN;
    // Lifetime from Keystone's own two timestamps, applied to our clock: immune to clock skew.
    const lifetime = Number.isFinite(issued) ? Math.max(0, expires - issued) : Math.max(0, expires - Date.now());
    const expiresAtMs = sentAt + lifetime;
    const renewAtMs = expiresAtMs - renewalMargin(lifetime);
    const info: TokenInfo = {
      methods: t.methods ?? [],
      userId: t.user?.id,
      userName: t.user?.name,
      projectId: t.project?.id,
      projectName: t.project?.name,
      roles: (t.roles ?? []).map((r) => r.name ?? r.id ?? "?"),
      issuedAt: t.issued_at ?? new Date(sentAt).toISOString(),
      expiresAt: t.expires_at,
      renewAt: new Date(renewAtMs).toISOString(),
    };
    const state: TokenState = { token: new Secret(tokenValue), renewAtMs, expiresAtMs, catalog: t.catalog ?? [], info };
    this.current = state;
    this.log.info(
      { user: info.userName ?? info.userId, project: info.projectName ?? info.projectId, expiresAt: info.expiresAt, renewAt: info.renewAt },
      "authenticated to Keystone",
    );
    return state;
  }
}

/** Answers Nova gave with a `Retry-After` the pacer now holds every call for. */
const pausedAnswers = new WeakSet<Error>();

/** Why a failed idempotent call is sent once more, or undefined when its caller decides. */
function resendReason(err: unknown): string | undefined {
  if (err instanceof OpenStackConnectionError && err.brokeBeforeAnswer) return `lost its connection before any answer (${err.code ?? ""})`;
  if (err instanceof OpenStackApiError && pausedAnswers.has(err)) return `was answered ${err.status} with Retry-After`;
  return undefined;
}

function errorCode(err: unknown): string | undefined {
  const code = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
  return typeof code === "string" ? code : undefined;
}

function stripQuery(url: string): string {
  const i = url.indexOf("?");
  return i < 0 ? url : url.slice(0, i);
}

function withQuery(url: string, query: OpenStackRequest["query"]): string {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    params.append(k, String(v));
  }
  const qs = params.toString();
  if (!qs) return url;
  return url + (url.includes("?") ? "&" : "?") + qs;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
