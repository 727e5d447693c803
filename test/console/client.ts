/**
 * A minimal browser for the console over fetch: one cookie jar, forms posted as a browser
 * posts them, the CSRF token read from the page. For the HTTP-level tests; the browser
 * tests drive Chromium itself.
 */
export interface Answer {
  status: number;
  text: string;
  headers: Headers;
  location: string | null;
}

export class ConsoleClient {
  cookie: string | null = null;
  lastSetCookie: string | null = null;

  constructor(readonly base: string) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send("GET", path, undefined, headers);
  }

  async post(path: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Answer> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    return this.send("POST", path, body.toString(), { "content-type": "application/x-www-form-urlencoded", ...headers });
  }

  async login(token: string, name?: string): Promise<Answer> {
    return this.post("/console/login", { token, ...(name ? { name } : {}) });
  }

  /** The CSRF token of this session, as the pages carry it. */
  async csrf(): Promise<string> {
    const page = await this.get("/console");
    const m = /name="_csrf" value="([^"]+)"/.exec(page.text);
    if (!m) throw new Error(`no CSRF token on the overview (status ${page.status})`);
    return m[1]!;
  }

  private async send(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<Answer> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      redirect: "manual",
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...headers },
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const set = res.headers.get("set-cookie");
    if (set) {
      this.lastSetCookie = set;
      const [pair] = set.split(";");
      this.cookie = pair && !/=$/.test(pair) && !/Max-Age=0/.test(set) ? pair : null;
    }
    return { status: res.status, text: await res.text(), headers: res.headers, location: res.headers.get("location") };
  }
}

/** Every secret value of a config object tree (values wrapped in Secret). */
export function secretsOf(value: unknown, out: string[] = []): string[] {
  if (value && typeof value === "object") {
    const reveal = (value as { reveal?: () => string }).reveal;
    if (typeof reveal === "function") {
      out.push(reveal.call(value));
      return out;
    }
    for (const v of Object.values(value as Record<string, unknown>)) secretsOf(v, out);
  }
  return out;
}
