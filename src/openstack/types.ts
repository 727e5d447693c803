/**
 * What the rest of lifeboat needs from an authenticated OpenStack session: a request to a
 * service picked from the Keystone catalog by type. The Keystone session (keystone.ts)
 * handles tokens, renewal, the 401-reauthenticate-once rule, endpoints, TLS and the one
 * resend of an idempotent call that lost its connection or was asked to wait (Retry-After).
 */
export type ServiceType = "compute" | "identity" | "placement";

export interface OpenStackRequest {
  service: ServiceType;
  method: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  /**
   * Path relative to the service endpoint, e.g. `/os-services` or `/v3/users/abc` (identity
   * paths carry their `/v3`), or an absolute URL (a link Nova answered with).
   */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as `OpenStack-API-Version: <service> <microversion>`. */
  microversion?: string;
  /**
   * Safe to send twice (GET always is): only then is the call sent once more when its
   * connection broke before any answer, or after Nova's Retry-After pause.
   */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Answers with these statuses are returned instead of thrown. */
  acceptStatus?: number[];
}

export interface OpenStackResponse<T = unknown> {
  status: number;
  headers: Record<string, string>;
  data: T;
}

export interface OpenStackSession {
  request<T = unknown>(req: OpenStackRequest): Promise<OpenStackResponse<T>>;
}

/** An error answer from an OpenStack API, with the service's own message. */
export class OpenStackApiError extends Error {
  override name = "OpenStackApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly method: string,
    readonly url: string,
    readonly body: unknown,
  ) {
    super(message);
  }

  /**
   * The service refused the request as it stands (domain/errors.ts): a 4xx other than 408
   * (timeout), 409 (a conflict with a state that changes, e.g. a task still running) and
   * 429 (too many requests). 5xx answers are the service's trouble and may pass.
   */
  get permanent(): boolean {
    return this.status >= 400 && this.status < 500 && ![408, 409, 429].includes(this.status);
  }
}
