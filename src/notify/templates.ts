import Mustache from "mustache";
import type { MessageKind } from "./config.js";
import { DEFAULT_TEMPLATES } from "./default-templates.js";

/**
 * What notification templates can use (the views) and how they are rendered. Every message
 * kind has a subject, a text and an HTML template in the logic-less mustache language: the
 * defaults are files, templates/<kind>.<subject|text|html>.mustache next to this module
 * (loaded by default-templates.ts). The rendering rules:
 *  - HTML bodies: every `{{value}}` is HTML-escaped (instance names, Nova errors, alert
 *    labels come from the cloud and its users); links only ever hold http(s) URLs;
 *  - text bodies and subjects: no escaping; the view's one-line fields carry no control
 *    characters, and a subject's line breaks are removed (no header injection);
 *  - webhook JSON templates: values are JSON-string-escaped.
 * Operators override any part per kind in `notifications.templates`; the values a template
 * can use are the view types below (the planner builds them).
 */

// ---- views: what templates can use ------------------------------------------------------

export interface LinkView {
  label: string;
  url: string;
}

export interface InstanceView {
  id: string;
  name: string;
  projectId: string;
  projectName?: string;
  /** evacuated, failed, skipped, unprotected, would-evacuate, pending, evacuating */
  state: string;
  /** Nova status before the recovery (ACTIVE, SHUTOFF…). */
  originalStatus: string;
  targetHost?: string;
  error?: string;
  note?: string;
  attempts: number;
  /** The instance's fate for operators, e.g. "evacuated to compute-3". */
  fate: string;
  /** The same, in words for the project's people. */
  tenantFate: string;
  evacuated: boolean;
  notRecovered: boolean;
}

export interface TimelineView {
  at: string;
  /** "+1m05s" since the first transition. */
  offset: string;
  from: string;
  to: string;
  reason: string;
  actor?: string;
  /** How long the recovery stayed in `to` (until the next transition), e.g. "12s". */
  duration?: string;
}

export interface DecisionView {
  at: string;
  gate: string;
  result: string;
  reason: string;
  blocking: boolean;
}

export interface FenceView {
  /** not-attempted, off, confirmed-off-by-operator, would-fence, unknown */
  state: string;
  stateText: string;
  device?: string;
  message?: string;
  attempts: { device: string; driver: string; ok: boolean; state: string; message: string }[];
}

export interface AlertView {
  alertname: string;
  status: string;
  startsAt: string;
  generatorURL?: string;
}

export interface CountsView {
  total: number;
  evacuated: number;
  failed: number;
  skipped: number;
  unprotected: number;
  /** would-evacuate (dry run), pending, evacuating. */
  other: number;
  notRecovered: number;
}

export interface TenantRecipientsView {
  projectId: string;
  projectName?: string;
  recipientsText: string;
  problems: string[];
}

/** Shared by every kind. */
export interface BaseView {
  kind: MessageKind;
  /** "[DRY RUN] " for dry runs that are sent, else "". */
  prefix: string;
  dryRun: boolean;
  dashboard_url?: string;
  api_url?: string;
  links: LinkView[];
}

/** operator-summary, blocked and fence-failed. */
export interface RecoveryView extends BaseView {
  id: string;
  host: string;
  incidentKey: string;
  state: string;
  /** completed, partial, failed, aborted (inferred while still notifying). */
  outcome: string;
  outcomeText: string;
  trigger: string;
  reason: string;
  detectedAt: string;
  createdAt: string;
  updatedAt: string;
  approvedBy?: string;
  alerts: AlertView[];
  timeline: TimelineView[];
  decisions: DecisionView[];
  fence: FenceView;
  instances: InstanceView[];
  counts: CountsView;
  countsText: string;
  /** Servers lifeboat could not unlock after evacuating them. */
  locksLeft: { id: string; name: string; error: string }[];
  tenants: TenantRecipientsView[];
  /** blocked: why, which gates, whether an approval lifts it, and how to approve. */
  blockReason?: string;
  blockedGatesText?: string;
  approvable?: boolean;
  /** blocked: the gates that blocked it before, when what blocks it changed. */
  previousGatesText?: string;
  /** blocked: what lifts a block an approval does not (a silence), in words. */
  liftText?: string;
  approveCommand: string;
  confirmOffCommand: string;
}

/** tenant: one project's view of one recovery. */
export interface TenantView extends BaseView {
  id: string;
  host: string;
  outcome: string;
  detectedAt: string;
  projectId: string;
  projectName?: string;
  /** The project's name and id, or its id. */
  projectLabel: string;
  instances: InstanceView[];
  counts: CountsView;
  anyEvacuated: boolean;
  anyNotRecovered: boolean;
}

export interface StormView extends BaseView {
  at: string;
  reason: string;
  hosts: string[];
  hostCount: number;
  hostList: string;
  /** When the held recoveries go ahead on their own, unless another host fails first. */
  until?: string;
  recoveryId?: string;
}

/** unknown-hosts: alerts for hosts lifeboat cannot act on, gathered since the last notice. */
export interface UnknownHostsView extends BaseView {
  at: string;
  since: string;
  /** The names listed (at most `alerts.unknown_hosts.max_listed`), each with the known host it likely meant. */
  hosts: { host: string; likely?: string }[];
  /** Distinct names seen, listed or not. */
  hostCount: number;
  /** Names seen but not listed. */
  moreCount: number;
  alertCount: number;
  /** Some name differs from a known host only in case, a trailing dot or a domain. */
  anyLikely: boolean;
}

export type MessageView = RecoveryView | TenantView | StormView | UnknownHostsView;

// ---- escaping ----------------------------------------------------------------------------

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "/": "&#x2F;",
  "`": "&#x60;",
  "=": "&#x3D;",
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`=/]/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** A value placed inside a JSON string literal. */
export function escapeJsonString(value: unknown): string {
  return JSON.stringify(String(value)).slice(1, -1);
}

const asIs = (value: unknown): string => String(value);

/** Control characters (line breaks included) become spaces: for one-line fields and subjects. */
export function oneLine(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").trim();
}

// ---- rendering ---------------------------------------------------------------------------

export interface TemplateSet {
  subject: string;
  text: string;
  /** "" sends text only. */
  html: string;
}

export interface RenderedMessage {
  subject: string;
  text: string;
  html?: string;
}

export type TemplateOverrides = Partial<Record<MessageKind, Partial<TemplateSet>>>;

export function templatesFor(kind: MessageKind, overrides: TemplateOverrides = {}): TemplateSet {
  const o = overrides[kind] ?? {};
  const d = DEFAULT_TEMPLATES[kind];
  return { subject: o.subject ?? d.subject, text: o.text ?? d.text, html: o.html ?? d.html };
}

export function renderMessage(kind: MessageKind, view: MessageView, overrides?: TemplateOverrides): RenderedMessage {
  const t = templatesFor(kind, overrides);
  const subject = oneLine(Mustache.render(t.subject, view, {}, { escape: asIs }));
  // Bodies may quote the rendered subject as {{subject}}.
  const withSubject = { ...view, subject };
  const text = tidyText(Mustache.render(t.text, withSubject, {}, { escape: asIs }));
  const html = t.html === "" ? undefined : Mustache.render(t.html, withSubject, {}, { escape: escapeHtml });
  return html === undefined ? { subject, text } : { subject, text, html };
}

/** Render a webhook body template (values JSON-escaped) and parse it: throws if not JSON. */
export function renderJsonBody(template: string, view: object): unknown {
  const out = Mustache.render(template, view, {}, { escape: escapeJsonString });
  try {
    return JSON.parse(out) as unknown;
  } catch (err) {
    throw new Error(`webhook template did not render to JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Render a one-line configured snippet (commands, URLs) without escaping. */
export function renderLine(template: string, view: object): string {
  return oneLine(Mustache.render(template, view, {}, { escape: asIs }));
}

/** At most one empty line in a row, no trailing spaces, one final newline. */
function tidyText(s: string): string {
  return `${s
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim()}\n`;
}
