import { describe, expect, it } from "vitest";
import { BLOCK_NEEDS, blockNeed } from "../../src/engine/block-needs.js";
import { blockedMessageDue, changedBlock, enterBlock, evidenceGates } from "../../src/engine/block.js";
import { evaluateGates } from "../../src/engine/gate-runner.js";
import type { Recovery } from "../../src/domain/model.js";
import type { Gate, GateVerdict } from "../../src/domain/ports/gate.js";

/**
 * Which blocks need a person and which are evidence that may clear by itself, and how that
 * carries through a recovery's block episodes (src/engine/block-needs.ts, block.ts).
 */

const recovery = { id: "r-1", host: "compute-1", approved: false } as Recovery;
const T0 = "2026-11-25T12:00:00.000Z";
const T1 = "2026-11-25T12:01:00.000Z";
const T2 = "2026-11-25T12:02:00.000Z";

function gate(name: string, kind: Gate["kind"], verdict: GateVerdict, afterPrior = false): Gate {
  return { name, kind, ...(afterPrior ? { afterPrior: true } : {}), evaluate: () => Promise.resolve(verdict) };
}
const pass: GateVerdict = { result: "pass", reason: "ok" };
const heartbeat: GateVerdict = { result: "block", reason: "Nova says nova-compute on compute-1 is up", recheck: true };
const humanDisabled: GateVerdict = { result: "block", reason: "disabled by a human", recheck: false, overridable: true };
const novaDown: GateVerdict = { result: "undecided", reason: "cannot ask Nova", recheck: true };
const storm: GateVerdict = { result: "block", reason: "storm guard", recheck: true, overridable: true };
const stormUndecided: GateVerdict = { result: "undecided", reason: "cannot count compute services", recheck: true, overridable: true };
const bmcSilent: GateVerdict = { result: "block", reason: "no fencing device answers", recheck: true };

const outcome = (gates: Gate[]) => evaluateGates(gates, recovery, new AbortController().signal, () => T0);

describe("what a block needs", () => {
  it("names every gate lifeboat has, each with what its block and its undecided verdict need", () => {
    expect(Object.keys(BLOCK_NEEDS).sort()).toEqual(
      ["alerts", "approval", "bmc", "capacity", "cooldown", "maintenance", "nova-service", "pause", "prometheus", "silences", "storm"].sort(),
    );
    for (const g of ["nova-service", "alerts", "prometheus"]) expect(BLOCK_NEEDS[g]).toEqual({ block: "may-clear", undecided: "may-clear" });
    expect(BLOCK_NEEDS.bmc).toEqual({ block: "person", undecided: "person" });
    for (const g of ["approval", "pause", "maintenance", "cooldown", "silences", "capacity", "storm"]) expect(BLOCK_NEEDS[g]!.block).toBe("person");
  });

  it("a verdict that is never re-checked, or a gate it does not know, needs a person", () => {
    expect(blockNeed("nova-service", heartbeat)).toBe("may-clear");
    expect(blockNeed("nova-service", humanDisabled)).toBe("person");
    expect(blockNeed("some-new-gate", { result: "block", recheck: true })).toBe("person");
    expect(blockNeed("storm", stormUndecided)).toBe("may-clear");
  });

  it("a block clears itself only when every blocking verdict may", async () => {
    expect((await outcome([gate("nova-service", "evidence", heartbeat), gate("bmc", "evidence", pass)])).clearsItself).toBe(true);
    expect((await outcome([gate("nova-service", "evidence", novaDown), gate("storm", "policy", stormUndecided)])).clearsItself).toBe(true);
    expect((await outcome([gate("nova-service", "evidence", heartbeat), gate("storm", "policy", storm)])).clearsItself).toBe(false);
    expect((await outcome([gate("nova-service", "evidence", humanDisabled)])).clearsItself).toBe(false);
    expect((await outcome([gate("bmc", "evidence", bmcSilent)])).clearsItself).toBe(false);
    expect((await outcome([gate("nova-service", "evidence", pass)])).clearsItself).toBe(false);
  });
});

describe("the blocked message's due time through a recovery's episodes", () => {
  it("evidence: due the delay after it began; a person needed: at once", async () => {
    const evidence = enterBlock(await outcome([gate("nova-service", "evidence", heartbeat)]), T0);
    expect(evidence.evidenceSince).toBe(T0);
    expect(blockedMessageDue(evidence, 180)).toBe(Date.parse(T0) + 180_000);
    const person = enterBlock(await outcome([gate("storm", "policy", storm)]), T0);
    expect(person.evidenceSince).toBeUndefined();
    expect(blockedMessageDue(person, 180)).toBe(Number.NEGATIVE_INFINITY);
    // Blocks journaled before this existed (no evidenceSince): at once, as they were.
    expect(blockedMessageDue(undefined, 180)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("evidence joined by a policy within one episode: the same episode, due at once", async () => {
    const first = enterBlock(await outcome([gate("nova-service", "evidence", heartbeat)]), T0);
    const joined = changedBlock(first, await outcome([gate("nova-service", "evidence", heartbeat), gate("storm", "policy", storm)]), T1)!;
    expect(joined.episode).toBe(first.episode);
    expect(joined.evidenceSince).toBeUndefined();
    // The policy lifts, the evidence stays: still that episode (told already); the evidence counts anew.
    const alone = changedBlock(joined, await outcome([gate("nova-service", "evidence", heartbeat)]), T2)!;
    expect(alone.episode).toBe(first.episode);
    expect(alone.evidenceSince).toBe(T2);
  });

  it("evidence that changes its words keeps its start; validated again and still held, it keeps counting", async () => {
    const first = enterBlock(await outcome([gate("nova-service", "evidence", heartbeat)]), T0);
    const undecided = changedBlock(first, await outcome([gate("nova-service", "evidence", novaDown)]), T1)!;
    expect(undecided.evidenceSince).toBe(T0);
    // A quick look saw it pass, the validation did not: a new stretch, the same evidence.
    const again = enterBlock(await outcome([gate("nova-service", "evidence", heartbeat)]), T2, undecided);
    expect(again.episode).not.toBe(first.episode);
    expect(again.evidenceSince).toBe(T0);
    // After an approval-held stretch, evidence starts counting when it begins.
    const approval = enterBlock(await outcome([gate("approval", "policy", { result: "block", reason: "approval required", recheck: false, overridable: true })]), T0);
    expect(enterBlock(await outcome([gate("nova-service", "evidence", heartbeat)]), T2, approval).evidenceSince).toBe(T2);
  });
});

describe("which gates a blocked recovery asks between full passes", () => {
  const nova = gate("nova-service", "evidence", heartbeat);
  const alerts = gate("alerts", "evidence", { result: "block", reason: "not firing", recheck: true });
  const stormGate = gate("storm", "policy", stormUndecided, true);
  const all = [gate("pause", "policy", pass), nova, gate("bmc", "evidence", pass), alerts, stormGate];

  it("only the blocking confirmations, when nothing else holds it", async () => {
    const block = enterBlock(await outcome(all.map((g) => (g === stormGate ? gate("storm", "policy", pass, true) : g))), T0);
    expect(evidenceGates(all, block).map((g) => g.name)).toEqual(["nova-service", "alerts"]);
  });

  it("none when a policy holds it too, even one that may clear by itself", async () => {
    const block = enterBlock(await outcome(all), T0);
    expect(block.evidenceSince).toBe(T0);
    expect(evidenceGates(all, block)).toEqual([]);
    const person = enterBlock(await outcome([nova, gate("storm", "policy", storm, true)]), T0);
    expect(evidenceGates(all, person)).toEqual([]);
    expect(evidenceGates(all, undefined)).toEqual([]);
  });
});
