import { hostname, userInfo } from "node:os";

/** How the CLI reaches a running lifeboat: --url/--token, else LIFEBOAT_URL/LIFEBOAT_ADMIN_TOKEN, else the config. */
export interface ClientOptions {
  url?: string;
  token?: string;
  config?: string;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  static async fromOptions(opts: ClientOptions, env: NodeJS.ProcessEnv = process.env): Promise<ApiClient> {
    let url = opts.url ?? env.LIFEBOAT_URL;
    let token = opts.token ?? env.LIFEBOAT_ADMIN_TOKEN;
    if ((!url || !token) && opts.config) {
      // Loaded only here: the config's schema is most of the CLI's start-up time.
      const { loadConfigFile } = await import("../config/load.js");
      const r = loadConfigFile(opts.config, env);
      if (!r.ok) throw new Error(`cannot read ${opts.config}: ${r.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
      const listen = r.config.server.listen;
      const idx = listen.lastIndexOf(":");
      const host = listen.slice(0, idx);
      url ??= `http://${host === "" || host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${listen.slice(idx + 1)}`;
      token ??= r.config.server.admin_token.reveal();
    }
    if (!token) throw new Error("no admin token: pass --token, set LIFEBOAT_ADMIN_TOKEN, or pass --config");
    return new ApiClient((url ?? "http://127.0.0.1:9095").replace(/\/+$/, ""), token);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          "content-type": "application/json",
          "x-lifeboat-actor": actorName(),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new Error(`cannot reach lifeboat at ${this.baseUrl}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    const text = await res.text();
    let data: unknown = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      /* plain text */
    }
    if (!res.ok) {
      const msg = data && typeof data === "object" && "error" in data ? String((data).error) : text;
      throw new Error(`${res.status}: ${msg}`);
    }
    return data as T;
  }
}

/** user@host of whoever runs the CLI, recorded as the actor of operator actions. */
export function actorName(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `${user}@${hostname()}`.replace(/[^\w.@:-]/g, "_").slice(0, 100);
}
