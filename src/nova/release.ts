import type { Logger } from "../logging.js";
import { sleep } from "../util/abort.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { findComputeService, toComputeServiceInfo } from "./compute-services.js";
import { isLifeboatReason } from "../domain/markers.js";
import type { NovaClient, NovaService } from "../openstack/nova.js";
import { OpenStackApiError } from "../openstack/types.js";
import type { ReleaseResult, ReleaseStep, ReleaseStepName } from "../domain/ports/cloud.js";

/**
 * Bringing a repaired host back into service, in the only order Nova accepts:
 * power it on (through the caller's fencing), wait until nova-compute has started there and
 * turned the host's `done` evacuation migrations into `completed` (un-forcing is refused
 * before), un-force it, wait until Nova sees it `up`, then enable it (enabling while it is
 * still down leaves the COMPUTE_STATUS_DISABLED trait on its provider for a while).
 * Every wait is bounded and reported as a step.
 */

export interface ReleaseDeps {
  nova: NovaClient;
  logger: Logger;
  /** Power the host on (the fencing service's job); omit when it is on already. */
  powerOn?: () => Promise<unknown>;
  /** Why the host must not come back yet (e.g. its alert still fires), or null when it may. */
  stillFailing?: () => Promise<string | null>;
  /** Enable the service even when someone other than lifeboat disabled it. */
  enableHumanDisabled?: boolean;
  pollIntervalMs?: number;
  /** Bound for nova-compute to start after power-on (default 10 min: servers boot slowly). */
  computeStartTimeoutMs?: number;
  /** Bound for the `done` evacuation migrations to turn `completed` (default 5 min). */
  migrationsTimeoutMs?: number;
  /** Bound for Nova to report the service `up` after un-forcing (default 2 min). */
  upTimeoutMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
}

class Refused extends Error {}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

export async function releaseHost(host: string, deps: ReleaseDeps): Promise<ReleaseResult> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ component: "release", host });
  const poll = deps.pollIntervalMs ?? 2000;
  const signal = deps.signal;
  const steps: ReleaseStep[] = [];
  let last: NovaService | null = null;

  const run = async (step: ReleaseStepName, fn: () => Promise<{ message: string; skipped?: boolean }>): Promise<void> => {
    const started = clock.now();
    try {
      const r = await fn();
      steps.push({ step, ok: true, skipped: r.skipped, message: r.message, ms: clock.now() - started });
      log.info({ step, ms: clock.now() - started, skipped: r.skipped }, r.message);
    } catch (err) {
      if (signal?.aborted) throw err;
      const message = errorMessage(err);
      steps.push({ step, ok: false, message, ms: clock.now() - started });
      log.warn({ step }, message);
      throw new Refused(message);
    }
  };
  const service = async (): Promise<NovaService> => {
    const s = await findComputeService(deps.nova, host, signal);
    if (!s) throw new Error(`Nova has no nova-compute service on ${host}`);
    last = s;
    return s;
  };
  /** Poll until `done` says so, at most `timeoutMs`. */
  const waitFor = async (what: string, timeoutMs: number, done: () => Promise<string | null>): Promise<string> => {
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      const ok = await done();
      if (ok !== null) return ok;
      const left = deadline - clock.now();
      if (left <= 0) throw new Error(`${what}: not after ${seconds(timeoutMs)}`);
      await sleep(Math.min(poll, left), signal);
    }
  };

  let baseline: string | null | undefined;
  let wasForced = false;
  let humanDisabled = false;
  try {
    await run("precheck", async () => {
      const s = await service();
      baseline = s.updated_at;
      wasForced = s.forced_down === true;
      humanDisabled = s.status === "disabled" && !isLifeboatReason(s.disabled_reason);
      if (!wasForced && s.status === "enabled") return { message: `nova-compute on ${host} is neither forced down nor disabled: nothing to release`, skipped: true };
      if (humanDisabled && !wasForced && !deps.enableHumanDisabled) {
        throw new Error(`nova-compute on ${host} was disabled by someone else ("${s.disabled_reason ?? ""}"), not by lifeboat: not touching it`);
      }
      const failing = deps.stillFailing ? await deps.stillFailing() : null;
      if (failing) throw new Error(`${host} is still failing: ${failing}`);
      return { message: `nova-compute on ${host}: forced_down=${String(s.forced_down)}, ${s.status}${s.disabled_reason ? ` ("${s.disabled_reason}")` : ""}` };
    });
    if (steps[0]?.skipped) {
      return { host, released: true, message: steps[0].message, steps, service: last ? toComputeServiceInfo(last) : undefined };
    }

    await run("power-on", async () => {
      if (!deps.powerOn) return { message: "no power-on requested (host assumed on)", skipped: true };
      await deps.powerOn();
      return { message: `${host} powered on` };
    });

    if (wasForced) {
      await run("compute-started", async () => {
        const msg = await waitFor(`nova-compute to start on ${host} (is the host still failing?)`, deps.computeStartTimeoutMs ?? 600_000, async () => {
          const s = await service();
          // A running nova-compute heartbeats: updated_at moves even while the service is forced down.
          return s.updated_at && s.updated_at !== baseline ? `nova-compute started on ${host} (heartbeat ${s.updated_at})` : null;
        });
        return { message: msg };
      });

      await run("migrations-completed", async () => {
        const msg = await waitFor(`the evacuation migrations from ${host} to become completed`, deps.migrationsTimeoutMs ?? 300_000, async () => {
          const done = await deps.nova.listMigrations({ source_compute: host, migration_type: "evacuation", status: "done" }, signal);
          const left = done.filter((m) => m.status === "done" && m.source_compute === host);
          return left.length === 0 ? `no \`done\` evacuation migration left on ${host}` : null;
        });
        return { message: msg };
      });

      await run("unforce", async () => {
        const s = await service();
        try {
          last = await deps.nova.updateService(String(s.id), { forced_down: false }, signal);
        } catch (err) {
          if (err instanceof OpenStackApiError) throw new Error(`Nova refused to un-force ${host} (${err.status}): ${err.message}`);
          throw err;
        }
        return { message: `nova-compute on ${host} no longer forced down` };
      });
    } else {
      steps.push({ step: "unforce", ok: true, skipped: true, message: "not forced down", ms: 0 });
    }

    await run("up", async () => {
      const msg = await waitFor(`Nova to see nova-compute on ${host} up`, deps.upTimeoutMs ?? 120_000, async () => {
        const s = await service();
        return s.state === "up" ? `nova-compute on ${host} is up` : null;
      });
      return { message: msg };
    });

    await run("enable", async () => {
      const s = await service();
      if (s.status === "enabled") return { message: "already enabled", skipped: true };
      if (!isLifeboatReason(s.disabled_reason) && !deps.enableHumanDisabled) {
        return { message: `left disabled: someone else disabled it ("${s.disabled_reason ?? ""}")`, skipped: true };
      }
      last = await deps.nova.updateService(String(s.id), { status: "enabled" }, signal);
      return { message: `nova-compute on ${host} enabled` };
    });
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    const failed = steps[steps.length - 1];
    return {
      host,
      released: false,
      message: `release of ${host} refused at ${failed?.step ?? "?"}: ${err.message}`,
      steps,
      service: last ? toComputeServiceInfo(last) : undefined,
    };
  }
  const final = last as NovaService | null;
  return { host, released: true, message: `${host} is back in service`, steps, service: final ? toComputeServiceInfo(final) : undefined };
}
