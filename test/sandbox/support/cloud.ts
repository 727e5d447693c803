import type { SandboxCloud } from "../../../packages/sandbox/src/cloud.js";
import { call, type RawAnswer } from "./fixtures.js";

/** A project-scoped admin token from the simulated Keystone. */
export async function adminToken(cloud: SandboxCloud): Promise<string> {
  const a = cloud.admin;
  const res = await fetch(`${cloud.url}/auth/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: { methods: ["password"], password: { user: { name: a.username, domain: { name: a.user_domain_name }, password: a.password } } },
        scope: { project: { name: a.project_name, domain: { name: a.project_domain_name } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`admin auth failed: ${res.status}`);
  return res.headers.get("x-subject-token")!;
}

/** A call to the simulated Nova at a microversion. */
export function nova(cloud: SandboxCloud, token: string, path: string, opts: { method?: string; body?: unknown; mv?: string } = {}): Promise<RawAnswer> {
  return call(`${cloud.endpoints.compute}${path}`, { method: opts.method, body: opts.body, token, microversion: `compute ${opts.mv ?? "2.53"}` });
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
