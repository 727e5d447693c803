import { describe, expect, expectTypeOf, it } from "vitest";
import type { Stage, StageContext, StageResult, StageSlice } from "../../src/engine/context.js";
import type { Recovery } from "../../src/domain/model.js";
import type { blocked } from "../../src/engine/stages/blocked.js";
import type { evacuating } from "../../src/engine/stages/evacuating.js";
import type { fencing } from "../../src/engine/stages/fencing.js";
import type { isolating } from "../../src/engine/stages/isolating.js";
import type { notifying } from "../../src/engine/stages/notifying.js";
import { pending } from "../../src/engine/stages/pending.js";
import type { validating } from "../../src/engine/stages/validating.js";
import type { awaitingCompute, awaitingUp, enabling, poweringOn, unforcing } from "../../src/engine/stages/release.js";
import { settleUnlocks } from "../../src/engine/stages/owed-unlocks.js";

/**
 * Each stage is given the part of the context it declares, and nothing else: these are
 * checked by the compiler (`npm run typecheck`), the runtime case shows a stage running on
 * its slice alone.
 */
type Given<S> = S extends (ctx: infer C) => unknown ? C : never;
/** What any of the stages `S` reaches (distributed: a union of stages reaches what each reaches). */
type Reaches<S> = S extends (ctx: infer C) => unknown ? keyof C : never;

interface Stages {
  pending: typeof pending;
  validating: typeof validating;
  blocked: typeof blocked;
  fencing: typeof fencing;
  isolating: typeof isolating;
  evacuating: typeof evacuating;
  notifying: typeof notifying;
  poweringOn: typeof poweringOn;
  awaitingCompute: typeof awaitingCompute;
  unforcing: typeof unforcing;
  awaitingUp: typeof awaitingUp;
  enabling: typeof enabling;
}
type AnyStageName = keyof Stages;

describe("the slice of the context each stage is given", () => {
  it("no stage reaches the pipeline's wiring it has a narrower form of", () => {
    // Side effects go through `guard`, lines through `log` (with the recovery on them), the end through the result.
    expectTypeOf<"beforeSideEffect" & Reaches<Stages[AnyStageName]>>().toBeNever();
    expectTypeOf<"logger" & Reaches<Stages[AnyStageName]>>().toBeNever();
    expectTypeOf<"onRecoveryEnded" & Reaches<Stages[AnyStageName]>>().toBeNever();
  });

  it("only the stages that power a host reach the fencing port", () => {
    expectTypeOf<Given<typeof fencing>>().toHaveProperty("fencing");
    expectTypeOf<Given<typeof poweringOn>>().toHaveProperty("fencing");
    expectTypeOf<"fencing" & Reaches<Stages[Exclude<AnyStageName, "fencing" | "poweringOn">]>>().toBeNever();
  });

  it("only evacuating reaches the site's evacuation budget; only blocked and notifying the notifier", () => {
    expectTypeOf<Given<typeof evacuating>>().toHaveProperty("evacuationBudget");
    expectTypeOf<"evacuationBudget" & Reaches<Stages[Exclude<AnyStageName, "evacuating">]>>().toBeNever();
    expectTypeOf<Given<typeof blocked>>().toHaveProperty("notifier");
    expectTypeOf<Given<typeof notifying>>().toHaveProperty("notifier");
    expectTypeOf<"notifier" & Reaches<Stages[Exclude<AnyStageName, "blocked" | "notifying">]>>().toBeNever();
  });

  it("a stage is given only the settings sections it reads", () => {
    expectTypeOf<keyof Given<typeof isolating>["config"]>().toEqualTypeOf<"recovery">();
    expectTypeOf<keyof Given<typeof evacuating>["config"]>().toEqualTypeOf<"evacuation" | "recovery">();
    expectTypeOf<keyof Given<typeof blocked>["config"]>().toEqualTypeOf<"notifications" | "recovery">();
    // No settings read: no `config` at all.
    expectTypeOf<"config" & Reaches<typeof pending | typeof validating | typeof fencing | typeof notifying | typeof poweringOn>>().toBeNever();
  });

  it("a stage that uses what it did not declare does not compile", () => {
    // What a stage's body reads is what its parameter's type must hold.
    const readsNotifier = (_ctx: StageSlice<"recovery" | "notifier">): Promise<StageResult> => Promise.resolve(null);
    // @ts-expect-error a stage that reads the notifier must declare it
    const sneaky: Stage<"recovery"> = readsNotifier;
    const readsStagger = (ctx: StageSlice<"recovery", "evacuation">): Promise<StageResult> => Promise.resolve({ after: ctx.config.evacuation.stagger_ms });
    // @ts-expect-error only the `recovery` section of the settings was declared
    const settings: Stage<"recovery", "recovery"> = readsStagger;
    // A shared helper asks for its own slice: a caller that lacks part of it is refused.
    const lacksGuard = async (ctx: StageSlice<"recovery" | "store" | "steps" | "evacuation" | "signal" | "log" | "nowIso", "recovery">): Promise<unknown> =>
      // @ts-expect-error settleUnlocks acts behind the guard, which this slice lacks
      settleUnlocks(ctx);
    // The runner's one context fits every stage.
    expectTypeOf<{ [K in AnyStageName]: StageContext extends Given<Stages[K]> ? true : false }>().toEqualTypeOf<Record<AnyStageName, true>>();
    expect([sneaky, settings, lacksGuard].every((f) => typeof f === "function")).toBe(true);
  });

  it("runs on its slice alone: pending is given the recovery, the clock and the wait, nothing more", async () => {
    const at = Date.parse("2026-01-01T00:00:00Z");
    const recovery = {
      kind: "alert",
      trigger: "alert",
      createdAt: new Date(at).toISOString(),
      graceUntil: new Date(at + 30_000).toISOString(),
    } as Recovery;
    const waited: number[] = [];
    const slice: Given<typeof pending> = {
      recovery,
      clock: { now: () => at + 10_000 },
      wait: (ms) => {
        waited.push(ms);
        return Promise.resolve();
      },
    };
    expect(Object.keys(slice).sort()).toEqual(["clock", "recovery", "wait"]);
    await expect(pending(slice)).resolves.toBeNull();
    expect(waited).toEqual([20_000]);
    slice.clock = { now: () => at + 30_000 };
    await expect(pending(slice)).resolves.toEqual({ to: "validating", reason: "grace period over (30s) and the alert still fires" });
  });
});
