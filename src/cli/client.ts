import { globalAgent } from "node:http";
import { globalAgent as httpsGlobalAgent } from "node:https";
import { hostname, userInfo } from "node:os";
import { errorMessage } from "../util/errors.js";
import { httpExchange, type HttpAnswer } from "../util/http-exchange.js";

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
    let res: HttpAnswer;
    try {
      res = await httpExchange({
        method,
        url: `${this.baseUrl}${path}`,
        headers: {
          authorization: `Bearer ${this.token}`,
          "content-type": "application/json",
          "x-lifeboat-actor": actorName(),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
        agents: { http: globalAgent, https: httpsGlobalAgent },
      });
    } catch (err) {
      throw new Error(`cannot reach lifeboat at ${this.baseUrl}: ${errorMessage(err)}`);
    }
    const { status, data } = res;
    if (status < 200 || status > 299) throw new Error(`${status}: ${errorText(data)}`);
    return data as T;
  }
}

/** What an error answer says: lifeboat's `error`, else the body as it came (none: nothing). */
function errorText(data: unknown): string {
  if (data === null) return "";
  if (typeof data === "string") return data;
  if (typeof data === "object" && "error" in data) return String(data.error);
  return JSON.stringify(data);
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
