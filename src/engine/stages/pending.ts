import type { Stage } from "../context.js";

/**
 * Grace period: wait until `graceUntil`. A resolved alert meanwhile aborts the recovery
 * (the coordinator moves it to `aborted` and wakes this wait).
 */
export const pending: Stage<"recovery" | "clock" | "wait"> = async (ctx) => {
  const left = Date.parse(ctx.recovery.graceUntil) - ctx.clock.now();
  if (left > 0) {
    await ctx.wait(left);
    return null;
  }
  if (ctx.recovery.kind === "release") {
    return { to: "powering-on", reason: `release requested by ${ctx.recovery.approvedBy ?? "an operator"}` };
  }
  if (ctx.recovery.kind === "fence-only") {
    return { to: "fencing", reason: `power-off by hand requested by ${ctx.recovery.approvedBy ?? "an operator"}: gates skipped` };
  }
  const grace = Math.round((Date.parse(ctx.recovery.graceUntil) - Date.parse(ctx.recovery.createdAt)) / 1000);
  return {
    to: "validating",
    reason: ctx.recovery.trigger === "alert" ? `grace period over (${grace}s) and the alert still fires` : `${ctx.recovery.trigger} recovery requested`,
  };
};
