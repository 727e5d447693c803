import type { IsolationResult } from "../../domain/ports/cloud.js";
import { isolationReason } from "../../domain/markers.js";
import { errorMessage } from "../../util/errors.js";
import type { Stage } from "../context.js";
import { cloudCall } from "../retry-policy.js";

/** Nova must know the host is dead: force its compute service down, then disable it. */
export const isolating: Stage<"recovery" | "evacuation" | "steps" | "guard" | "signal" | "nowIso", "recovery"> = async (ctx) => {
  const r = ctx.recovery;
  // The disabled_reason doubles as state kept in Nova (start-up reconciliation reads it).
  const reason = isolationReason(r.id, ctx.nowIso());
  await ctx.guard("isolate");
  try {
    const res = await ctx.steps.run<IsolationResult>("isolate", () => ctx.evacuation.isolate(r.host, reason, ctx.signal), {
      retry: cloudCall(ctx.config),
      signal: ctx.signal,
    });
    // A dry run's port sent nothing and says what it would have done.
    if (res.dryRun) return { to: "evacuating", reason: res.message };
    return { to: "evacuating", reason: res.already ? "compute service was already forced down and disabled" : "compute service forced down and disabled" };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return {
      to: "notifying",
      reason: `could not isolate the host in Nova (the host is fenced; nothing evacuated): ${errorMessage(err)}`,
      patch: { outcome: "failed" },
    };
  }
};
