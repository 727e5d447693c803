import { connect } from "node:net";
import { brotliCompressSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertPayload } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig, WEBHOOK_TOKEN } from "../kit/config.js";

/**
 * The webhook's refusals name the actual problem, at the level it deserves (a sender's
 * mistake is a warning, not lifeboat's error), whatever the HTTP framing.
 */

let t: TestLifeboat;
beforeAll(async () => {
  t = makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 } }));
  await t.app.start({ listen: "127.0.0.1:0" });
});
afterAll(async () => {
  await t.app.stop();
});

/** One request written byte for byte; the whole answer, status line to body. */
function rawRequest(request: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(t.app.port, "127.0.0.1", () => s.write(request));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", reject);
    s.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

const head = (lines: string[]): string => `${lines.join("\r\n")}\r\n\r\n`;

describe("webhook refusals say what is wrong", () => {
  it("an HTTP/1.0 POST without Content-Length has no body: 411 says so, not that application/json is not application/json", async () => {
    const before = (await t.app.store.listEvents({ limit: 1000 })).length;
    const r = await rawRequest(
      head(["POST /api/v1/alerts HTTP/1.0", "Host: lifeboat", `Authorization: Bearer ${WEBHOOK_TOKEN}`, "Content-Type: application/json"]) + JSON.stringify(alertPayload({ host: "compute-1" })),
    );
    expect(r.status).toBe(411);
    expect(JSON.parse(r.body)).toEqual({ error: "no request body: send the Alertmanager payload with a Content-Length (or Transfer-Encoding: chunked)" });
    expect((await t.app.store.listEvents({ limit: 1000 })).length).toBe(before);
  });

  it("a body that is not the brotli its Content-Encoding claims: 400 naming the encoding, logged as a refusal", async () => {
    const garbage = Buffer.from("this is not brotli data at all");
    const r = await rawRequest(
      Buffer.concat([
        Buffer.from(
          head([
            "POST /api/v1/alerts HTTP/1.1",
            "Host: lifeboat",
            `Authorization: Bearer ${WEBHOOK_TOKEN}`,
            "Content-Type: application/json",
            "Content-Encoding: br",
            `Content-Length: ${garbage.length}`,
            "Connection: close",
          ]),
        ),
        garbage,
      ]),
    );
    expect(r.status).toBe(400);
    expect((JSON.parse(r.body) as { error: string }).error).toMatch(/^request body is not valid br data \(Content-Encoding: br\): /);
    const lines = t.logs.filter((l) => l.includes("not valid br data"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => (JSON.parse(l) as { level: string }).level === "warn")).toBe(true);
    expect(t.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error")).toEqual([]);
  });

  it("a valid brotli body is read (the encoding itself is fine)", async () => {
    const body = brotliCompressSync(Buffer.from(JSON.stringify(alertPayload({ host: "compute-2" }))));
    const r = await rawRequest(
      Buffer.concat([
        Buffer.from(
          head([
            "POST /api/v1/alerts HTTP/1.1",
            "Host: lifeboat",
            `Authorization: Bearer ${WEBHOOK_TOKEN}`,
            "Content-Type: application/json",
            "Content-Encoding: br",
            `Content-Length: ${body.length}`,
            "Connection: close",
          ]),
        ),
        body,
      ]),
    );
    expect(r.status).toBe(202);
  });

  it("JSON null is valid JSON: refused as not an object, not as malformed", async () => {
    const res = await fetch(`${t.app.url}/api/v1/alerts`, { method: "POST", headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, "content-type": "application/json" }, body: "null" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "the body must be a JSON object (an Alertmanager webhook payload), got null" });
  });
});
