/**
 * The service's own words from an OpenStack error body:
 * Nova `{"badRequest": {"code": 400, "message": …}}` (any single fault key),
 * Keystone `{"error": {"code", "title", "message"}}`,
 * Placement `{"errors": [{"status", "title", "detail"}]}`.
 */
export function serviceErrorMessage(body: unknown): string | undefined {
  if (typeof body === "string") {
    const t = body.trim();
    return t.length > 0 ? t.slice(0, 500) : undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.errors)) {
    const parts = b.errors
      .map((e) => {
        if (typeof e !== "object" || e === null) return undefined;
        const r = e as Record<string, unknown>;
        return typeof r.detail === "string" ? r.detail : typeof r.title === "string" ? r.title : undefined;
      })
      .filter((s): s is string => s !== undefined);
    if (parts.length > 0) return parts.join("; ");
  }
  for (const v of Object.values(b)) {
    if (typeof v === "object" && v !== null && typeof (v as Record<string, unknown>).message === "string") {
      return (v as Record<string, string>).message;
    }
  }
  if (typeof b.message === "string") return b.message;
  return undefined;
}

/** No answer at all: connection refused or reset, DNS failure, or the request timed out. */
export class OpenStackConnectionError extends Error {
  override name = "OpenStackConnectionError";
  /** The socket error (ECONNREFUSED, ECONNRESET…), when there was one. */
  readonly code: string | undefined;

  constructor(
    message: string,
    readonly method: string,
    readonly url: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
    this.code = options?.code;
  }

  /**
   * The connection broke before any answer and before the request could have run: refused,
   * or reset (a keep-alive socket the server had closed, a proxy restarting). Sent again at
   * once, an idempotent call usually gets through; a timeout is not this (the service may
   * be busy with it, and the caller's policy decides).
   */
  get brokeBeforeAnswer(): boolean {
    return !this.timedOut && this.code !== undefined && BROKEN_CONNECTION.has(this.code);
  }
}

const BROKEN_CONNECTION = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE"]);
