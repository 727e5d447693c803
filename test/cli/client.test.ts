import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient } from "../../src/cli/client.js";

/** The CLI's client of lifeboat's API: what it sends, and how each kind of answer reads. */

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function serve(answer: (seen: Seen) => { status: number; body: string; type?: string }): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      seen.push(s);
      const a = answer(s);
      res.writeHead(a.status, { "content-type": a.type ?? "application/json" });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen };
}

describe("the CLI's API client", () => {
  it("sends the token, the actor and the JSON body, and returns the JSON answer", async () => {
    const { url, seen } = await serve(() => ({ status: 200, body: JSON.stringify({ approved: [{ id: "r-1" }] }) }));
    const client = new ApiClient(url.replace(/\/$/, ""), "admin-token-0123");
    const answer = await client.request<{ approved: { id: string }[] }>("POST", "/api/v1/approve", { blocked_by: "storm" });
    expect(answer.approved[0]!.id).toBe("r-1");
    expect(seen[0]).toMatchObject({ method: "POST", url: "/api/v1/approve", body: JSON.stringify({ blocked_by: "storm" }) });
    expect(seen[0]!.headers.authorization).toBe("Bearer admin-token-0123");
    expect(seen[0]!.headers["x-lifeboat-actor"]).toMatch(/^[\w.-]+@[\w.-]+$/);
  });

  it("says the status and lifeboat's error, a plain text body, or nothing when the body is empty", async () => {
    const answers = [
      { status: 409, body: JSON.stringify({ error: "recovery r-1 already ended (completed)" }) },
      { status: 502, body: "Bad Gateway from the proxy", type: "text/plain" },
      { status: 503, body: "" },
    ];
    const { url } = await serve(() => answers.shift()!);
    const client = new ApiClient(url.replace(/\/$/, ""), "t");
    await expect(client.request("POST", "/api/v1/recoveries/r-1/approve")).rejects.toThrow(/^409: recovery r-1 already ended \(completed\)$/);
    await expect(client.request("GET", "/api/v1/status")).rejects.toThrow(/^502: Bad Gateway from the proxy$/);
    await expect(client.request("GET", "/api/v1/status")).rejects.toThrow(/^503: $/);
  });

  it("names the address it could not reach and why", async () => {
    const { url } = await serve(() => ({ status: 200, body: "{}" }));
    await new Promise((r) => server!.close(r));
    server = undefined;
    const base = url.replace(/\/$/, "");
    await expect(new ApiClient(base, "t").request("GET", "/api/v1/status")).rejects.toThrow(`cannot reach lifeboat at ${base}: connect ECONNREFUSED`);
  });
});
