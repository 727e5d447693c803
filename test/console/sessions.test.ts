import { describe, expect, it } from "vitest";
import { LoginThrottle, SessionStore, csrfMatches } from "../../src/http/console/sessions.js";
import { LiveHub, type LiveClient, type LiveView } from "../../src/http/console/live.js";
import type { ConsoleChange } from "../../src/http/console/deps.js";
import { silentLogger } from "../../src/logging.js";

function fakeClock(start = 1_000_000): { now(): number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("console sessions", () => {
  it("a session lasts its lifetime and not a moment more; ending it forgets it", () => {
    const clock = fakeClock();
    const s = new SessionStore(60_000, clock);
    const { id, session } = s.create("alice@console");
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.get(id)).toBe(session);
    clock.advance(59_999);
    expect(s.get(id)).toBe(session);
    clock.advance(1);
    expect(s.get(id)).toBeNull();
    const again = s.create("bob@console");
    s.destroy(again.id);
    expect(s.get(again.id)).toBeNull();
    expect(s.get(undefined)).toBeNull();
    expect(s.get("made-up")).toBeNull();
  });

  it("CSRF tokens are per session and compared whole", () => {
    const s = new SessionStore(60_000, fakeClock());
    const a = s.create("a").session;
    const b = s.create("b").session;
    expect(a.csrf).not.toBe(b.csrf);
    expect(csrfMatches(a, a.csrf)).toBe(true);
    expect(csrfMatches(a, b.csrf)).toBe(false);
    expect(csrfMatches(a, a.csrf.slice(0, -1))).toBe(false);
    expect(csrfMatches(a, undefined)).toBe(false);
    expect(csrfMatches(a, [a.csrf])).toBe(false);
  });

  it("keeps at most 1000 sessions: a login loop drops the oldest, not memory", () => {
    const s = new SessionStore(60_000, fakeClock());
    const first = s.create("first").id;
    for (let i = 0; i < 1500; i++) s.create(`n${i}`);
    expect(s.size).toBe(1000);
    expect(s.get(first)).toBeNull();
  });
});

describe("failed-login throttle", () => {
  it("five failures are free, then each doubles the wait (capped); a success clears the record", () => {
    const clock = fakeClock();
    const t = new LoginThrottle(clock);
    for (let i = 0; i < 5; i++) {
      expect(t.waitMs("10.0.0.1")).toBe(0);
      t.failed("10.0.0.1");
    }
    expect(t.waitMs("10.0.0.1")).toBe(1000);
    expect(t.waitMs("10.0.0.2")).toBe(0);
    clock.advance(1000);
    expect(t.waitMs("10.0.0.1")).toBe(0);
    t.failed("10.0.0.1");
    expect(t.waitMs("10.0.0.1")).toBe(2000);
    for (let i = 0; i < 20; i++) t.failed("10.0.0.1");
    expect(t.waitMs("10.0.0.1")).toBe(15 * 60_000);
    t.succeeded("10.0.0.1");
    expect(t.waitMs("10.0.0.1")).toBe(0);
  });
});

describe("live hub", () => {
  function source(): { subscribe: (l: (c: ConsoleChange) => void) => () => void; emit(c: ConsoleChange): void; listeners: number } {
    const ls = new Set<(c: ConsoleChange) => void>();
    return {
      subscribe: (l) => {
        ls.add(l);
        return () => ls.delete(l);
      },
      emit: (c) => ls.forEach((l) => l(c)),
      get listeners() {
        return ls.size;
      },
    };
  }
  function client(): LiveClient & { got: { event: string; data: string }[] } {
    const got: { event: string; data: string }[] = [];
    return { got, send: (event, data) => got.push({ event, data }), valid: () => true, close: () => undefined };
  }
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it("costs nothing while nobody watches: no subscription, no timer, no render; all of them end with the last browser", async () => {
    const src = source();
    let renders = 0;
    let text = "one";
    const view: LiveView = { key: "v", concerns: (c) => "recoveryId" in c && c.recoveryId === "r1", render: () => (renders++, Promise.resolve({ s: text })) };
    const hub = new LiveHub(src.subscribe, silentLogger(), { coalesceMs: 20, fallbackMs: 60_000 });
    expect(src.listeners).toBe(0);
    expect(hub.active).toBe(false);
    const a = client();
    const leave = hub.join(view, a)!;
    expect(hub.active).toBe(true);
    expect(src.listeners).toBe(1);
    await wait(50);
    expect(a.got).toEqual([{ event: "section", data: JSON.stringify({ id: "s", html: "one" }) }]);
    // A change elsewhere renders nothing; one that concerns the page sends what changed, once per burst.
    src.emit({ recoveryId: "r2" });
    await wait(50);
    expect(renders).toBe(1);
    text = "two";
    for (let i = 0; i < 20; i++) src.emit({ recoveryId: "r1" });
    await wait(80);
    expect(renders).toBe(2);
    expect(a.got.map((g) => JSON.parse(g.data) as { html: string }).map((g) => g.html)).toEqual(["one", "two"]);
    // Nothing changed: nothing sent.
    src.emit({ recoveryId: "r1" });
    await wait(50);
    expect(a.got).toHaveLength(2);
    // A second browser on the same page gets the last render, without a render of its own.
    const b = client();
    const leaveB = hub.join(view, b)!;
    expect(b.got.map((g) => JSON.parse(g.data) as { html: string }).map((g) => g.html)).toEqual(["two"]);
    leave();
    leaveB();
    expect(hub.active).toBe(false);
    expect(src.listeners).toBe(0);
    const before = renders;
    src.emit({ recoveryId: "r1" });
    await wait(50);
    expect(renders).toBe(before);
  });

  it("re-reads watched pages on its own while someone watches (what another instance wrote reaches no listener here)", async () => {
    const src = source();
    let text = "a";
    const view: LiveView = { key: "v", concerns: () => false, render: () => Promise.resolve({ s: text }) };
    const hub = new LiveHub(src.subscribe, silentLogger(), { coalesceMs: 10, fallbackMs: 60 });
    const c = client();
    const leave = hub.join(view, c)!;
    await wait(30);
    text = "b";
    await wait(150);
    expect(c.got.map((g) => JSON.parse(g.data) as { html: string }).map((g) => g.html)).toEqual(["a", "b"]);
    leave();
  });

  it("turns browsers away past its limit, and closes streams whose session ended", async () => {
    const src = source();
    const view: LiveView = { key: "v", concerns: () => false, render: () => Promise.resolve({}) };
    const hub = new LiveHub(src.subscribe, silentLogger(), { maxClients: 1, heartbeatMs: 20 });
    let valid = true;
    let closed = false;
    const c: LiveClient & { events: string[] } = { events: [], send: (e) => c.events.push(e), valid: () => valid, close: () => (closed = true) };
    const leave = hub.join(view, c)!;
    expect(hub.join(view, client())).toBeNull();
    await wait(50);
    expect(c.events).toContain("ping");
    valid = false;
    await wait(50);
    expect(c.events).toContain("expired");
    expect(closed).toBe(true);
    leave();
    expect(hub.active).toBe(false);
  });
});

describe("where the console sends a browser after a login or an action", () => {
  it("only to a console path of this lifeboat", async () => {
    const { safeNext } = await import("../../src/http/console/router.js");
    expect(safeNext("/console/recoveries?page=2")).toBe("/console/recoveries?page=2");
    expect(safeNext("/console")).toBe("/console");
    for (const bad of ["//evil.example/console", "https://evil.example/console", "/console//evil.example", "/consolex", "/console/../api/v1/status", "/api/v1/status", "/console\\\\evil", 42, undefined]) {
      expect(safeNext(bad), String(bad)).toBe("/console");
    }
  });
});
