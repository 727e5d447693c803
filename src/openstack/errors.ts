import { OpenStackApiError } from "./types.js";

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
  constructor(
    message: string,
    readonly method: string,
    readonly url: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Worth another try for an idempotent call: 5xx answers and connection failures. */
export function isRetryableError(err: unknown): boolean {
  if (err instanceof OpenStackApiError) return err.status >= 500;
  return err instanceof OpenStackConnectionError;
}
