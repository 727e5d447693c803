import type { ChainResult } from "../../domain/ports/fencing.js";
import type { Stage } from "../context.js";

/**
 * The point of no return: the state was written as `fencing` before this runs, so a
 * resolved alert can no longer abort. Only a device that reads back "off" (or an operator's
 * explicit confirmation) lets the recovery go on; anything else ends in `failed` with the
 * host's fence state `unknown`, and nothing is evacuated.
 */
export const fencing: Stage<"recovery" | "fencing" | "hold" | "steps" | "guard" | "signal" | "log"> = async (ctx) => {
  const r = ctx.recovery;
  const host = r.host;

  if (r.confirmedOff) {
    ctx.log.warn("fencing skipped: an operator confirmed the host is powered off");
    await ctx.steps.record("fence", { skipped: true, reason: "operator confirmed the host is off" });
    await ctx.hold.hold("operator");
    return { to: "isolating", reason: "host confirmed off by an operator (--confirm-off)", patch: { fenceState: "confirmed-off-by-operator" } };
  }

  if (!ctx.fencing.hasHost(host)) {
    ctx.log.error("no fencing configured for this host: recovery fails, nothing is evacuated");
    return {
      to: "notifying",
      reason: `no fencing configured for ${host}; nothing evacuated (an operator who knows the host is off can run: lifeboat recover ${host} --confirm-off)`,
      patch: { fenceState: "unknown", outcome: "failed" },
    };
  }

  await ctx.guard("fence");
  const result = await ctx.steps.run<ChainResult>("fence", () => ctx.fencing.fenceOff(host, ctx.signal));
  if (!result.ok) {
    ctx.log.error({ attempts: result.attempts.map((a) => ({ device: a.device, message: a.result.message })) }, "fencing failed: nothing will be evacuated");
    return {
      to: "notifying",
      reason: `fencing failed, host power state unknown, nothing evacuated: ${result.message}`,
      patch: { fenceState: "unknown", outcome: "failed", fence: result },
    };
  }
  // A chain that sent nothing (a dry run's port) proved nothing: the host only would be fenced.
  const [fenceState, reason] = result.dryRun
    ? (["would-fence", result.message] as const)
    : (["off", `${r.kind === "fence-only" ? "powered off by hand" : "powered off"}, confirmed by ${result.device ?? "the device"}`] as const);
  await ctx.hold.hold(result.device ?? "device");
  if (r.kind === "fence-only") {
    return { to: "notifying", reason, patch: { fenceState, outcome: "completed", fence: result } };
  }
  return { to: "isolating", reason, patch: { fenceState, fence: result } };
};
