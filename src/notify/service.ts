import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { OpenStackSession } from "../openstack/types.js";
import type { NotificationRecord, OutboxEntry, RecoveryDetail } from "../domain/model.js";
import { recoveryDetail, type Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { NotificationsConfig } from "./config.js";
import { enqueue, mailDomain, scrub, settingsSink, storeOutbox, storeSink, type PlannedMessage, type RecordSink } from "./dispatcher.js";
import { createEmailChannel } from "./email.js";
import {
  outcomeOf,
  planBlocked,
  planFenceFailed,
  planRecoveryFinished,
  planStorm,
  planTenantLookup,
  planUnknownHosts,
  type PlanContext,
  type StormInfo,
  type UnknownHostsInfo,
} from "./planner.js";
import { RecipientResolver, type ProjectRecipients } from "./recipients.js";
import type { NotificationChannel } from "./types.js";
import { createWebhookChannel } from "./webhook.js";
import { DeliveryWorker } from "./worker.js";

/**
 * The notifier the pipeline calls (src/domain/ports/notifier.ts NotifierPort). Each method plans
 * the messages and journals them (state `pending`), and resolves — never rejects — once they
 * are durable: no stage ever waits for a mail server, a webhook, or Keystone. The delivery
 * worker (`delivery`, started with the coordinator on the leader) sends them in the
 * background with retries; what happened is in the records, the logs and the metrics.
 *
 * `recoveryFinished` needs the affected projects' people (Keystone, Nova metadata): it
 * journals a planning entry, and the worker looks them up and plans the summary and the
 * tenant mails.
 *
 * Storm messages belong to no recovery. When the caller names the recovery that tripped the
 * guard (`info.recoveryId`), their records join its journal; otherwise they are kept in the
 * setting `notifications.storm` (the last 200), since the notification table's rows must
 * name a recovery. Unknown-hosts notices are kept the same way in `notifications.unknown-hosts`.
 * The worker delivers them all.
 */

export interface NotifySummary {
  /** Journaled as pending: the delivery worker sends them. */
  queued: number;
  /** Nothing is sent while the caller waits: always 0 (kept for the pipeline's port). */
  sent: number;
  /** Recorded failed at once (no such channel). */
  failed: number;
  /** Not queued on purpose: already queued or sent for this incident, or a dry run. */
  skipped: number;
  deduplicated: number;
  wouldSend: number;
  /** The record of every message journaled in this call. */
  records: NotificationRecord[];
  /** What went wrong (the journal…). */
  problems: string[];
}

export interface Notifier {
  recoveryFinished(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  recoveryBlocked(detail: RecoveryDetail, reason: string, signal?: AbortSignal): Promise<NotifySummary>;
  fenceFailed(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  stormTripped(info: StormInfo, signal?: AbortSignal): Promise<NotifySummary>;
  unknownHosts(info: UnknownHostsInfo, signal?: AbortSignal): Promise<NotifySummary>;
  /** Sends what is journaled; run it on the leader only (start/stop with the coordinator). */
  readonly delivery: DeliveryWorker;
  /** Release the channels' resources (the SMTP transport); stop `delivery` first. */
  close(): void;
}

export interface NotifierDeps {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** Keystone (tenant members, creators) and Nova (server metadata) lookups. */
  session?: OpenStackSession;
  /** Replace the channels built from the config (tests). */
  channels?: NotificationChannel[];
  now?: () => string;
  /** Longest wait of the delivery worker between two looks at the queue. */
  pollMs?: number;
}

export const STORM_SETTING = "notifications.storm";
/** Records of the unknown-hosts notices (they belong to no recovery). */
export const UNKNOWN_HOSTS_SETTING = "notifications.unknown-hosts";
/**
 * Settings that keep the records of messages tied to no recovery. The delivery worker sends
 * the pending ones of each: a message kind kept in a setting of its own adds its key here.
 */
const KEPT_IN_SETTINGS = [STORM_SETTING, UNKNOWN_HOSTS_SETTING] as const;

export function createNotifier(config: NotificationsConfig, deps: NotifierDeps): Notifier {
  const log = deps.logger.child({ component: "notify" });
  const secrets: Secret[] = [
    ...(config.smtp?.password ? [config.smtp.password] : []),
    ...config.webhooks.flatMap((w) => (w.auth ? [w.auth.credentials] : [])),
  ];
  const channels = new Map<string, NotificationChannel>();
  const closers: (() => void)[] = [];
  if (deps.channels) {
    for (const c of deps.channels) channels.set(c.name, c);
  } else {
    if (config.smtp && config.from) {
      const email = createEmailChannel({ smtp: config.smtp, from: config.from, ...(config.reply_to ? { replyTo: config.reply_to } : {}) });
      channels.set(email.name, email);
      closers.push(() => email.close());
    }
    for (const w of config.webhooks) {
      const c = createWebhookChannel(w);
      channels.set(c.name, c);
    }
  }
  const ctx: PlanContext = { config, channels: new Set(channels.keys()) };
  // One sink per setting, shared by the notifier and the worker: its writes are serialised.
  const kept = new Map(KEPT_IN_SETTINGS.map((key) => [key, settingsSink(deps.store, key)]));
  const storm = kept.get(STORM_SETTING)!;
  const enqueueDeps = {
    channels: ctx.channels,
    metrics: deps.metrics,
    logger: log,
    messageDomain: mailDomain(config.from),
    ...(deps.now ? { now: deps.now } : {}),
  };

  const forRecovery = (d: RecoveryDetail): Logger => log.child({ recovery: d.id, host: d.host });

  async function tenantRecipients(detail: RecoveryDetail, problems: string[], signal: AbortSignal): Promise<ProjectRecipients[]> {
    if (!wantsTenants(detail)) return [];
    const resolver = new RecipientResolver(config.tenants, {
      logger: log.child({ recovery: detail.id, host: detail.host }),
      signal,
      recordedMetadata: recordedMetadata(detail),
      ...(deps.session ? { session: deps.session } : {}),
    });
    const projects = [...new Set(detail.instances.map((i) => i.projectId))].sort();
    const found = await Promise.all(projects.map((p) => resolver.forProject(p, detail.instances)));
    for (const f of found) for (const p of f.problems) problems.push(`project ${f.projectId}: ${p}`);
    return found;
  }

  const wantsTenants = (d: RecoveryDetail): boolean => config.tenants.enabled && channels.has("email") && outcomeOf(d) !== "aborted" && d.instances.length > 0;

  /** A planning entry: find the tenants' recipients, then queue the summary and the tenant mails. */
  async function expand(entry: OutboxEntry, signal: AbortSignal, lastTry: boolean): Promise<{ note: string; problems: string[] }> {
    const detail = await recoveryDetail(deps.store, entry.record.recoveryId);
    if (!detail) throw new Error(`recovery ${entry.record.recoveryId} not found`);
    const problems: string[] = [];
    const tenants = await tenantRecipients(detail, problems, signal);
    const planned = planRecoveryFinished(detail, tenants, ctx);
    const r = await enqueue(planned, storeSink(deps.store, detail.id), { ...enqueueDeps, logger: forRecovery(detail) });
    // A message that could not be journaled: plan again later (the others are deduplicated).
    if (r.problems.length) throw new Error(r.problems.join("; "));
    // Lookups that may pass later (Keystone or Nova answered 5xx, or nothing): the people
    // found are told now, the planning is tried again for the others (the cloud's transport
    // does not retry these itself; the delivery worker's retry policy does).
    const transient = tenants.reduce((n, t) => n + t.transient, 0);
    if (transient > 0 && !lastTry) throw new Error(`${transient} recipient lookup(s) failed and may pass on a later try: ${problems.join("; ")}`);
    return { note: `planned ${planned.length} message(s), ${tenants.reduce((n, t) => n + t.recipients.length, 0)} tenant recipient(s)`, problems };
  }

  const delivery = new DeliveryWorker({
    sources: [storeOutbox(deps.store), ...kept.values()],
    channels,
    retry: config.retry,
    concurrency: config.concurrency,
    metrics: deps.metrics,
    logger: deps.logger,
    secrets,
    expand,
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
  });

  async function run(what: string, sink: () => Promise<RecordSink>, plan: (problems: string[]) => Promise<PlannedMessage[]>, logger: Logger): Promise<NotifySummary> {
    const problems: string[] = [];
    try {
      const planned = await plan(problems);
      const r = await enqueue(planned, await sink(), { ...enqueueDeps, logger });
      if (r.queued > 0) delivery.kick();
      const summary: NotifySummary = {
        queued: r.queued,
        sent: 0,
        failed: r.failed,
        skipped: r.deduplicated + r.wouldSend,
        deduplicated: r.deduplicated,
        wouldSend: r.wouldSend,
        records: r.records,
        problems: [...problems, ...r.problems],
      };
      logger.info({ what, queued: summary.queued, failed: summary.failed, deduplicated: summary.deduplicated, wouldSend: summary.wouldSend, problems: summary.problems.length }, "notifications queued");
      return summary;
    } catch (err) {
      const message = scrub(errorMessage(err), secrets);
      logger.error({ what, err: message }, "notifications could not be queued");
      return { queued: 0, sent: 0, failed: 0, skipped: 0, deduplicated: 0, wouldSend: 0, records: [], problems: [...problems, message] };
    }
  }

  const journal = (d: RecoveryDetail) => () => Promise.resolve(storeSink(deps.store, d.id));

  return {
    recoveryFinished(detail) {
      // With tenants to tell, the lookups of who they are happen in the background too.
      const plan = (): Promise<PlannedMessage[]> => Promise.resolve().then(() => (wantsTenants(detail) ? [planTenantLookup(detail)] : planRecoveryFinished(detail, [], ctx)));
      return run("recovery-finished", journal(detail), plan, forRecovery(detail));
    },
    recoveryBlocked(detail, reason) {
      return run("blocked", journal(detail), () => Promise.resolve(planBlocked(detail, reason, ctx)), forRecovery(detail));
    },
    fenceFailed(detail) {
      return run("fence-failed", journal(detail), () => Promise.resolve(planFenceFailed(detail, ctx)), forRecovery(detail));
    },
    stormTripped(info) {
      const sink = async (): Promise<RecordSink> => {
        const owner = info.recoveryId ? await deps.store.getRecovery(info.recoveryId) : null;
        return owner ? storeSink(deps.store, owner.id) : storm;
      };
      return run("storm", sink, () => Promise.resolve(planStorm(info, ctx)), log.child({ storm: info.at }));
    },
    unknownHosts(info) {
      const sink = (): Promise<RecordSink> => Promise.resolve(kept.get(UNKNOWN_HOSTS_SETTING)!);
      return run("unknown-hosts", sink, () => Promise.resolve(planUnknownHosts(info, ctx)), log.child({ notice: info.at }));
    },
    delivery,
    close() {
      void delivery.stop();
      for (const c of closers) c();
    },
  };
}

/**
 * The servers' metadata as the recovery's journaled listing of the host's instances (step
 * `list-instances`) recorded it, by server id; empty when the step has no such result.
 */
export function recordedMetadata(detail: Pick<RecoveryDetail, "steps">): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const listed: unknown = detail.steps.find((s) => s.key === "list-instances" && s.state === "succeeded")?.result;
  if (!Array.isArray(listed)) return out;
  for (const item of listed as unknown[]) {
    if (typeof item !== "object" || item === null) continue;
    const { id, metadata } = item as { id?: unknown; metadata?: unknown };
    if (typeof id !== "string" || typeof metadata !== "object" || metadata === null) continue;
    const strings = Object.entries(metadata as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string");
    out.set(id, Object.fromEntries(strings));
  }
  return out;
}
