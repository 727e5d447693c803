import type { Logger } from "../logging.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { judgeHeartbeat } from "../domain/heartbeat.js";
import { toComputeServiceInfo } from "./compute-services.js";
import type { NovaClient } from "../openstack/nova.js";
import type { MonitorEvent } from "../intake/monitor-events.js";

/**
 * The native monitor, for clouds without Prometheus (freezer-dr's monitor, done with Nova's
 * own records): a host is failed when its nova-compute service is `enabled`, not forced
 * down, and dead by its heartbeat — last heartbeat at least `staleSeconds` old on Nova's
 * clock (the Date of the same answer; see domain/heartbeat.ts), or Nova's own `down`. A
 * disabled service is maintenance (a human's) or already isolated (lifeboat's); a
 * forced-down one is being handled (lifeboat forces down before it disables).
 */

export interface FailedHost {
  host: string;
  zone: string | null;
  /** Last heartbeat, ISO 8601 UTC. */
  updatedAt: string | null;
  /** How old it was when Nova answered, on Nova's clock (a lower bound); null when Nova's answer had no Date. */
  heartbeatAgeSeconds: number | null;
}

export async function checkFailedHosts(nova: NovaClient, opts: { staleSeconds: number; signal?: AbortSignal }): Promise<FailedHost[]> {
  const { services, novaTime } = await nova.readServices({ binary: "nova-compute" }, opts.signal);
  const failed: FailedHost[] = [];
  for (const s of services) {
    if (s.binary !== "nova-compute" || s.status !== "enabled" || s.forced_down === true) continue;
    const info = toComputeServiceInfo(s, novaTime);
    const judged = judgeHeartbeat(info, opts.staleSeconds);
    if (judged.dead) failed.push({ host: info.host, zone: info.zone, updatedAt: info.updatedAt, heartbeatAgeSeconds: judged.ageSeconds });
  }
  return failed.sort((a, b) => a.host.localeCompare(b.host));
}

export interface NovaServiceMonitorOptions {
  intervalMs: number;
  /** A heartbeat at least this old on Nova's clock means the host failed (config `monitor.stale_seconds`). */
  staleSeconds: number;
  onEvents: (events: MonitorEvent[]) => void | Promise<void>;
  logger: Logger;
  /** Re-send `firing` for every still-failed host on every poll (default true, like Alertmanager repeats). */
  repeatFiring?: boolean;
  clock?: Clock;
}

export class NovaServiceMonitor {
  private readonly failing = new Map<string, { since: string; zone: string | null; lastHeartbeat: string | null }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(
    private readonly nova: NovaClient,
    private readonly opts: NovaServiceMonitorOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger.child({ component: "nova-monitor" });
  }

  /** Hosts currently seen failed. */
  failedHosts(): string[] {
    return [...this.failing.keys()].sort();
  }

  /** One poll: the events it produces (also given to `onEvents` when there are any). */
  async poll(signal?: AbortSignal): Promise<MonitorEvent[]> {
    const now = new Date(this.clock.now()).toISOString();
    const failed = await checkFailedHosts(this.nova, { staleSeconds: this.opts.staleSeconds, signal });
    const events: MonitorEvent[] = [];
    const seen = new Set<string>();
    for (const f of failed) {
      seen.add(f.host);
      const known = this.failing.get(f.host);
      const since = known?.since ?? now;
      this.failing.set(f.host, { since, zone: f.zone, lastHeartbeat: f.updatedAt });
      if (!known || this.opts.repeatFiring !== false) {
        events.push({ host: f.host, status: "firing", lastHeartbeat: f.updatedAt, zone: f.zone, since, at: now, source: "nova-monitor" });
      }
    }
    for (const [host, known] of [...this.failing]) {
      if (seen.has(host)) continue;
      this.failing.delete(host);
      events.push({ host, status: "resolved", lastHeartbeat: known.lastHeartbeat, zone: known.zone, since: known.since, at: now, source: "nova-monitor" });
    }
    if (events.length > 0) await this.opts.onEvents(events);
    return events;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = (): void => {
      this.running = this.poll()
        .then(() => undefined)
        .catch((err: unknown) => {
          // A failed poll says nothing about the hosts: keep the last known state.
          this.log.warn({ err: errorMessage(err) }, "could not read nova-compute services");
        })
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
