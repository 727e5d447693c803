import { describe, expect, it } from "vitest";
import { evaluateGates } from "../../src/engine/gate-runner.js";
import type { Recovery } from "../../src/domain/model.js";
import type { Gate, GateContext, GateVerdict } from "../../src/domain/ports/gate.js";

const recovery = { id: "r-1", host: "compute-1", approved: false } as Recovery;
const now = (): string => "2026-11-25T12:00:00.000Z";

/** A gate whose verdict the test hands out, recording when it was asked and what it was told. */
function heldGate(name: string, opts: { afterPrior?: boolean } = {}) {
  let release: (v: GateVerdict) => void = () => undefined;
  const asked: GateContext[] = [];
  const gate: Gate = {
    name,
    kind: "evidence",
    ...(opts.afterPrior ? { afterPrior: true } : {}),
    evaluate: (ctx) => {
      asked.push(ctx);
      return new Promise<GateVerdict>((r) => (release = r));
    },
  };
  return { gate, asked, decide: (v: GateVerdict) => release(v) };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("gate runner", () => {
  it("asks independent gates at once, and the afterPrior gate only once they all decided", async () => {
    const nova = heldGate("nova-service");
    const bmc = heldGate("bmc");
    const storm = heldGate("storm", { afterPrior: true });
    const outcome = evaluateGates([nova.gate, bmc.gate, storm.gate], recovery, new AbortController().signal, now);
    await tick();
    // Both checks are in flight together; the storm guard waits.
    expect([nova.asked.length, bmc.asked.length, storm.asked.length]).toEqual([1, 1, 0]);
    bmc.decide({ result: "block", reason: "BMC unreachable", recheck: true });
    await tick();
    expect(storm.asked.length).toBe(0);
    nova.decide({ result: "pass", reason: "down" });
    await tick();
    expect(storm.asked).toHaveLength(1);
    expect(storm.asked[0]!.priorPass).toBe(false);
    storm.decide({ result: "pass", reason: "calm" });
    const o = await outcome;
    expect(o.decisions.map((d) => `${d.gate}:${d.result}`)).toEqual(["nova-service:pass", "bmc:block", "storm:pass"]);
    expect(o.pass).toBe(false);
    expect(o.blocking.map((d) => d.gate)).toEqual(["bmc"]);
  });

  it("tells the afterPrior gate when everything before it passed; a gate that throws is undecided", async () => {
    const storm = heldGate("storm", { afterPrior: true });
    const broken: Gate = { name: "capacity", kind: "policy", evaluate: () => Promise.reject(new Error("Placement answered 503")) };
    const ok: Gate = { name: "pause", kind: "policy", evaluate: () => Promise.resolve({ result: "pass", reason: "not paused" }) };
    const first = evaluateGates([ok, storm.gate], recovery, new AbortController().signal, now);
    await tick();
    expect(storm.asked[0]!.priorPass).toBe(true);
    storm.decide({ result: "pass", reason: "calm" });
    expect((await first).pass).toBe(true);

    const second = await evaluateGates([ok, broken], recovery, new AbortController().signal, now);
    expect(second.decisions[1]).toMatchObject({ gate: "capacity", result: "undecided", reason: "check failed: Placement answered 503" });
    expect(second.pass).toBe(false);
  });

  it("an abort fails the whole evaluation once every check has settled", async () => {
    const ac = new AbortController();
    const slow = heldGate("nova-service");
    const aborting: Gate = {
      name: "bmc",
      kind: "evidence",
      evaluate: () => {
        ac.abort(new Error("stopping"));
        return Promise.reject(new Error("stopping"));
      },
    };
    let done = false;
    const outcome = evaluateGates([slow.gate, aborting], recovery, ac.signal, now).finally(() => (done = true));
    await tick();
    expect(done).toBe(false); // still waiting for the other check
    slow.decide({ result: "pass", reason: "down" });
    await expect(outcome).rejects.toThrow("stopping");
  });
});
