import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { OpenStackSession } from "../openstack/types.js";
import type { NotificationRecord, RecoveryDetail } from "../recovery/model.js";
import type { Store } from "../store/types.js";
import { withTimeout } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { NotificationsConfig } from "./config.js";
import { dispatch, scrub, settingsSink, storeSink, type PlannedMessage, type RecordSink } from "./dispatcher.js";
import { createEmailChannel } from "./email.js";
import {
  outcomeOf,
  planBlocked,
  planFenceFailed,
  planRecoveryFinished,
  planStorm,
  planUnknownHosts,
  type PlanContext,
  type StormInfo,
  type UnknownHostsInfo,
} from "./planner.js";
import { RecipientResolver, type ProjectRecipients } from "./recipients.js";
import type { NotificationChannel } from "./types.js";
import { createWebhookChannel } from "./webhook.js";

/**
 * The notifier the pipeline calls (src/recovery/ports.ts NotifierPort). Every method
 * resolves — never rejects — with what happened; delivery trouble is in the records, the
 * logs, the metrics and `problems`. Each message's time is bounded by
 * `retry.message_timeout_seconds` (and the caller's signal), so notifying never holds or
 * fails a recovery.
 *
 * Storm messages belong to no recovery. When the caller names the recovery that tripped the
 * guard (`info.recoveryId`), their records join its journal; otherwise they are kept in the
 * setting `notifications.storm` (the last 200), since the notification table's rows must
 * name a recovery. Unknown-hosts notices are kept the same way in `notifications.unknown-hosts`.
 */

export interface NotifySummary {
  sent: number;
  failed: number;
  /** Not sent on purpose: already sent for this incident, or a dry run. */
  skipped: number;
  deduplicated: number;
  wouldSend: number;
  /** The final record of every message handled in this call. */
  records: NotificationRecord[];
  /** What went wrong outside a single delivery (recipient lookups, the store…). */
  problems: string[];
}

export interface Notifier {
  recoveryFinished(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  recoveryBlocked(detail: RecoveryDetail, reason: string, signal?: AbortSignal): Promise<NotifySummary>;
  fenceFailed(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  stormTripped(info: StormInfo, signal?: AbortSignal): Promise<NotifySummary>;
  unknownHosts(info: UnknownHostsInfo, signal?: AbortSignal): Promise<NotifySummary>;
  /** Release the channels' resources (the SMTP transport). */
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
}

export const STORM_SETTING = "notifications.storm";
/** Records of the unknown-hosts notices (they belong to no recovery). */
export const UNKNOWN_HOSTS_SETTING = "notifications.unknown-hosts";

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

  async function run(
    what: string,
    sink: () => Promise<RecordSink>,
    plan: (problems: string[]) => Promise<PlannedMessage[]>,
    logger: Logger,
    signal?: AbortSignal,
  ): Promise<NotifySummary> {
    const problems: string[] = [];
    try {
      const planned = await plan(problems);
      const r = await dispatch(planned, await sink(), { channels, retry: config.retry, concurrency: config.concurrency, metrics: deps.metrics, logger, secrets, ...(deps.now ? { now: deps.now } : {}) }, signal);
      const summary: NotifySummary = {
        sent: r.sent,
        failed: r.failed,
        skipped: r.deduplicated + r.wouldSend,
        deduplicated: r.deduplicated,
        wouldSend: r.wouldSend,
        records: r.records,
        problems: [...problems, ...r.problems],
      };
      logger.info({ what, sent: summary.sent, failed: summary.failed, deduplicated: summary.deduplicated, wouldSend: summary.wouldSend, problems: summary.problems.length }, "notifications done");
      return summary;
    } catch (err) {
      const message = scrub(errorMessage(err), secrets);
      logger.error({ what, err: message }, "notifications failed");
      return { sent: 0, failed: 0, skipped: 0, deduplicated: 0, wouldSend: 0, records: [], problems: [...problems, message] };
    }
  }

  async function tenantRecipients(detail: RecoveryDetail, problems: string[], signal?: AbortSignal): Promise<ProjectRecipients[]> {
    if (!config.tenants.enabled || !channels.has("email") || outcomeOf(detail) === "aborted") return [];
    const resolver = new RecipientResolver(config.tenants, {
      logger: log.child({ recovery: detail.id, host: detail.host }),
      signal: withTimeout(config.retry.message_timeout_seconds * 1000, signal),
      ...(deps.session ? { session: deps.session } : {}),
    });
    const projects = [...new Set(detail.instances.map((i) => i.projectId))].sort();
    const found = await Promise.all(projects.map((p) => resolver.forProject(p, detail.instances)));
    for (const f of found) for (const p of f.problems) problems.push(`project ${f.projectId}: ${p}`);
    return found;
  }

  const forRecovery = (d: RecoveryDetail): Logger => log.child({ recovery: d.id, host: d.host });
  const journal = (d: RecoveryDetail) => () => Promise.resolve(storeSink(deps.store, d.id));

  return {
    recoveryFinished(detail, signal) {
      return run(
        "recovery-finished",
        journal(detail),
        async (problems) => planRecoveryFinished(detail, await tenantRecipients(detail, problems, signal), ctx),
        forRecovery(detail),
        signal,
      );
    },
    recoveryBlocked(detail, reason, signal) {
      return run("blocked", journal(detail), () => Promise.resolve(planBlocked(detail, reason, ctx)), forRecovery(detail), signal);
    },
    fenceFailed(detail, signal) {
      return run("fence-failed", journal(detail), () => Promise.resolve(planFenceFailed(detail, ctx)), forRecovery(detail), signal);
    },
    stormTripped(info, signal) {
      const sink = async (): Promise<RecordSink> => {
        const owner = info.recoveryId ? await deps.store.getRecovery(info.recoveryId) : null;
        return owner ? storeSink(deps.store, owner.id) : settingsSink(deps.store, STORM_SETTING);
      };
      return run("storm", sink, () => Promise.resolve(planStorm(info, ctx)), log.child({ storm: info.at }), signal);
    },
    unknownHosts(info, signal) {
      const sink = (): Promise<RecordSink> => Promise.resolve(settingsSink(deps.store, UNKNOWN_HOSTS_SETTING));
      return run("unknown-hosts", sink, () => Promise.resolve(planUnknownHosts(info, ctx)), log.child({ notice: info.at }), signal);
    },
    close() {
      for (const c of closers) c();
    },
  };
}
