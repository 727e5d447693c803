import pRetry, { AbortError as StopRetrying } from "p-retry";
import { sleep, withTimeout } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { CommonDeviceConfig } from "./config.js";
import type { FenceDevice, FenceResult, PowerState, PowerStatus } from "../domain/ports/fencing.js";
import { isPermanent } from "../domain/errors.js";

/**
 * The power loop every driver shares (fence-agents' `fence_action`): read the state; if it
 * already is the wanted one, succeed without sending anything; else send the command, wait
 * `power_wait` (default 0), then read the state at once and every `poll_interval` until it
 * reads back the wanted value within `power_timeout`. Each device command runs under its
 * own deadline and is retried with exponential backoff (p-retry); the whole operation runs
 * under `timeout_seconds`.
 *
 * Success is only ever reported from a read-back: a command's "OK" proves nothing. And one
 * read-back is not enough either: the wanted state counts only when two consecutive reads,
 * `confirm_interval` apart and each its own device call (a new ipmitool session, a new HTTP
 * GET, a new virsh run), both say it. Reading at once after the command is what makes the
 * fence fast, and it is also the moment a BMC is most likely to answer wrongly: some report
 * the state they were told to reach before the chassis has acted, or a value from a cache
 * or a sensor scan that the next scan contradicts. Evacuating on such an answer would start
 * instances elsewhere while they still run, so one answer is never trusted on its own; a
 * second that agrees costs one device call, far less than fence_ipmilan's fixed 2 s wait.
 * The same rule applies to the state found before sending anything.
 */

/** Consecutive reads of the wanted state that confirm it. */
const CONFIRMING_READS = 2;

export type PowerTarget = "off" | "on";

/** A failure in the device's own words. */
export class DeviceError extends Error {
  override name = "DeviceError";
  /** A definite answer (bad credentials, no such domain…) as opposed to transport trouble worth sending again (domain/errors.ts). */
  readonly permanent: boolean;
  /**
   * The device refused the command in a way that may mean "already in that state"
   * (Redfish 400/409, virsh "domain is not running"): re-read the state, never trust it.
   */
  readonly recheck: boolean;

  constructor(message: string, opts: { permanent?: boolean; recheck?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.recheck = opts.recheck ?? false;
    this.permanent = opts.permanent ?? this.recheck;
  }
}

/**
 * What a driver provides: one status read and one power command, each a single device
 * call. `open`/`close` bracket one operation (a Redfish session); their value is handed to
 * every call of that operation, so concurrent operations never share a session.
 */
export interface PowerDriver<S = undefined> {
  open?(signal: AbortSignal): Promise<S>;
  close?(session: S, signal: AbortSignal): Promise<void>;
  readStatus(session: S, signal: AbortSignal): Promise<PowerStatus>;
  /** Send the command; resolves with the device's answer (for the result message). */
  sendPower(session: S, target: PowerTarget, signal: AbortSignal): Promise<string>;
}

/**
 * A fencing device whose status, off and on all go through the power loop: a driver only
 * says how to read the state and how to send a command.
 */
export abstract class PowerLoopDevice<S = undefined> implements FenceDevice, PowerDriver<S> {
  abstract readonly driver: string;
  abstract readonly label: string;
  readonly #timing: PowerTiming;

  protected constructor(config: CommonDeviceConfig) {
    this.#timing = timingFromConfig(config);
  }

  status(signal?: AbortSignal): Promise<PowerStatus> {
    return readPowerStatus(this, this.#timing, signal);
  }

  off(signal?: AbortSignal): Promise<FenceResult> {
    return setPower(this, "off", this.#timing, signal);
  }

  on(signal?: AbortSignal): Promise<FenceResult> {
    return setPower(this, "on", this.#timing, signal);
  }

  abstract readStatus(session: S, signal: AbortSignal): Promise<PowerStatus>;
  abstract sendPower(session: S, target: PowerTarget, signal: AbortSignal): Promise<string>;
}

export interface PowerTiming {
  operationTimeoutMs: number;
  commandTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
  powerWaitMs: number;
  powerTimeoutMs: number;
  pollIntervalMs: number;
  confirmIntervalMs: number;
}

export function timingFromConfig(c: CommonDeviceConfig): PowerTiming {
  return {
    operationTimeoutMs: c.timeout_seconds * 1000,
    commandTimeoutMs: c.command_timeout_seconds * 1000,
    retries: c.retries,
    retryDelayMs: c.retry_delay_seconds * 1000,
    powerWaitMs: c.power_wait_seconds * 1000,
    powerTimeoutMs: c.power_timeout_seconds * 1000,
    pollIntervalMs: c.poll_interval_seconds * 1000,
    confirmIntervalMs: c.confirm_interval_seconds * 1000,
  };
}

const MAX_BACKOFF_MS = 8000;

/**
 * Run one device call under its own deadline, retrying transient failures with exponential
 * backoff while the operation's signal allows. `onAttempt` counts calls made.
 */
export async function callDevice<T>(
  call: (signal: AbortSignal) => Promise<T>,
  timing: PowerTiming,
  opSignal: AbortSignal,
  onAttempt?: () => void,
): Promise<T> {
  return pRetry(
    async () => {
      opSignal.throwIfAborted();
      onAttempt?.();
      try {
        return await call(withTimeout(timing.commandTimeoutMs, opSignal));
      } catch (err) {
        if (opSignal.aborted) throw new StopRetrying(asError(err));
        if (isPermanent(err)) throw new StopRetrying(asError(err));
        throw asError(err);
      }
    },
    {
      retries: timing.retries,
      factor: 2,
      minTimeout: timing.retryDelayMs,
      maxTimeout: Math.max(timing.retryDelayMs, MAX_BACKOFF_MS),
      signal: opSignal,
    },
  );
}

/** Read the power state once (with retries), inside an opened/closed session. Throws the device's words. */
export async function readPowerStatus<S>(driver: PowerDriver<S>, timing: PowerTiming, signal?: AbortSignal): Promise<PowerStatus> {
  const opSignal = withTimeout(timing.operationTimeoutMs, signal);
  try {
    return await withSession(driver, timing, opSignal, (session) => callDevice((s) => driver.readStatus(session, s), timing, opSignal));
  } catch (err) {
    throw new DeviceError(failureText(err, opSignal, signal, timing), { cause: err });
  }
}

/** Bring the device to `target` and prove it by read-back. Never throws: failures are results. */
export async function setPower<S>(driver: PowerDriver<S>, target: PowerTarget, timing: PowerTiming, signal?: AbortSignal): Promise<FenceResult> {
  const started = performance.now();
  const opSignal = withTimeout(timing.operationTimeoutMs, signal);
  let commands = 0;
  let lastState: PowerState = "unknown";
  const result = (ok: boolean, state: PowerState, already: boolean, message: string): FenceResult => ({
    ok,
    state,
    already,
    message,
    durationMs: Math.round(performance.now() - started),
    attempts: commands,
  });
  const twice = `twice, ${timing.confirmIntervalMs / 1000}s apart`;

  try {
    return await withSession(driver, timing, opSignal, async (session) => {
      const read = (s: AbortSignal): Promise<PowerStatus> => driver.readStatus(session, s);
      let before = await callDevice(read, timing, opSignal);
      lastState = before.state;
      if (before.state === target) {
        // Nothing is sent on one answer either: the second read decides.
        await sleep(timing.confirmIntervalMs, opSignal);
        const again = await callDevice(read, timing, opSignal);
        lastState = again.state;
        if (again.state === target) return result(true, target, true, `already ${target} (${again.raw}, read ${twice}); nothing sent`);
        before = again;
      }

      let answer: string;
      let rechecking = false;
      try {
        answer = await callDevice((s) => driver.sendPower(session, target, s), timing, opSignal, () => commands++);
      } catch (err) {
        if (!(err instanceof DeviceError && err.recheck) || opSignal.aborted) throw err;
        // The device claims there is nothing to do: find out by reading the state back.
        answer = `the device answered: ${err.message}`;
        rechecking = true;
      }
      if (!rechecking) await sleep(timing.powerWaitMs, opSignal);

      const pollUntil = performance.now() + timing.powerTimeoutMs;
      let last = before.raw;
      /** Reads of the wanted state in a row, the latest last. */
      let streak = 0;
      /** A read of the wanted state that the next read did not confirm. */
      let unconfirmed: string | undefined;
      for (;;) {
        let now: PowerStatus | undefined;
        try {
          now = await read(withTimeout(timing.commandTimeoutMs, opSignal));
          lastState = now.state;
          last = now.raw;
        } catch (err) {
          // A BMC may be briefly unresponsive while the power changes: keep polling.
          if (opSignal.aborted) throw err;
          lastState = "unknown";
          last = `status read failed: ${errorMessage(err)}`;
        }
        if (now?.state === target) {
          streak++;
          if (streak >= CONFIRMING_READS) return result(true, target, false, `${target}: ${answer}; read back: ${now.raw} (${twice})`);
          // Read again even when power_timeout has just run out: a first answer always gets its second.
          await sleep(timing.confirmIntervalMs, opSignal);
          continue;
        }
        if (streak > 0) unconfirmed = `it read ${target} once, but the next read said: ${last}`;
        streak = 0;
        const left = pollUntil - performance.now();
        if (left <= 0) break;
        await sleep(Math.min(timing.pollIntervalMs, left), opSignal);
      }
      return result(
        false,
        lastState,
        false,
        `sent ${target} (${answer}) but the device did not read back ${target} within ${timing.powerTimeoutMs / 1000}s; last status: ${last}${unconfirmed ? `; ${unconfirmed}` : ""}`,
      );
    });
  } catch (err) {
    return result(false, lastState, false, failureText(err, opSignal, signal, timing));
  }
}

async function withSession<S, T>(driver: PowerDriver<S>, timing: PowerTiming, opSignal: AbortSignal, fn: (session: S) => Promise<T>): Promise<T> {
  if (!driver.open) return fn(undefined as S);
  const session = await callDevice((s) => driver.open!(s), timing, opSignal);
  try {
    return await fn(session);
  } finally {
    // Log out even when the operation timed out: BMCs allow few sessions.
    await driver.close?.(session, AbortSignal.timeout(timing.commandTimeoutMs)).catch(() => undefined);
  }
}

function failureText(err: unknown, opSignal: AbortSignal, callerSignal: AbortSignal | undefined, timing: PowerTiming): string {
  const words = errorMessage(err);
  if (callerSignal?.aborted) return `aborted: ${errorMessage(callerSignal.reason)}`;
  if (opSignal.aborted) return `operation timed out after ${timing.operationTimeoutMs / 1000}s (${words})`;
  return words;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(errorMessage(err));
}
