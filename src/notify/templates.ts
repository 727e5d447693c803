import Mustache from "mustache";
import type { MessageKind } from "./config.js";

/**
 * Default subject, text and HTML of every message kind, in the logic-less mustache
 * language, and the rendering rules:
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

// ---- defaults ----------------------------------------------------------------------------

const HTML_HEAD = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{subject}}</title></head>
<body style="font-family: sans-serif; font-size: 14px; color: #222">`;
const HTML_FOOT = `</body></html>`;
const HTML_TABLE = `style="border-collapse: collapse" cellpadding="4" border="1"`;

const LINKS_TEXT = `
{{#links.length}}
Links
{{#links}}
  {{label}}: {{url}}
{{/links}}
{{/links.length}}`;

/** What the host held and what fired: the foot of the blocked and fence-failed messages. */
const CONTEXT_TEXT = `Detected:  {{detectedAt}} (trigger: {{trigger}})
{{#counts.total}}
Instances on the host: {{counts.total}}
{{/counts.total}}
{{#alerts}}
Alert:     {{alertname}} ({{status}} since {{startsAt}}){{#generatorURL}} {{generatorURL}}{{/generatorURL}}
{{/alerts}}
${LINKS_TEXT}`;

const LINKS_HTML = `
{{#links.length}}
<p>{{#links}}<a href="{{url}}">{{label}}</a> &nbsp; {{/links}}</p>
{{/links.length}}`;

const SUMMARY_TEXT = `Recovery {{id}} of host {{host}}: {{outcomeText}}.
{{reason}}

Outcome:   {{outcome}} ({{countsText}})
Detected:  {{detectedAt}} (trigger: {{trigger}})
Fence:     {{fence.stateText}}{{#fence.device}}, by {{fence.device}}{{/fence.device}}
{{#fence.message}}
           {{fence.message}}
{{/fence.message}}
{{#approvedBy}}
Approved:  by {{approvedBy}}
{{/approvedBy}}

Timeline
{{#timeline}}
  {{at}} {{offset}}  {{from}} -> {{to}}{{#duration}} ({{duration}}){{/duration}}: {{reason}}{{#actor}} [{{actor}}]{{/actor}}
{{/timeline}}

Gate decisions
{{#decisions}}
  {{at}}  {{gate}}: {{result}} - {{reason}}
{{/decisions}}
{{^decisions}}
  none recorded
{{/decisions}}

Instances ({{counts.total}})
{{#instances}}
  {{name}} ({{id}}, project {{projectId}}): {{fate}}
{{/instances}}
{{^instances}}
  none
{{/instances}}

{{#locksLeft.length}}
Left locked: lifeboat could not unlock these servers; their owners cannot stop, resize or
delete them until they are unlocked (lifeboat tries again at its next start-up or takeover)
{{#locksLeft}}
  {{name}} ({{id}}): {{error}}
{{/locksLeft}}

{{/locksLeft.length}}
{{#fence.attempts.length}}
Fence devices tried
{{#fence.attempts}}
  {{device}} ({{driver}}): {{#ok}}ok{{/ok}}{{^ok}}FAILED{{/ok}}, power {{state}} - {{message}}
{{/fence.attempts}}

{{/fence.attempts.length}}
{{#tenants.length}}
Tenants told
{{#tenants}}
  project {{projectId}}{{#projectName}} ({{projectName}}){{/projectName}}: {{recipientsText}}{{#problems}}; {{.}}{{/problems}}
{{/tenants}}

{{/tenants.length}}
Alerts
{{#alerts}}
  {{alertname}} ({{status}} since {{startsAt}}){{#generatorURL}} {{generatorURL}}{{/generatorURL}}
{{/alerts}}
{{^alerts}}
  none (trigger: {{trigger}})
{{/alerts}}
${LINKS_TEXT}
`;

const SUMMARY_HTML = `${HTML_HEAD}
<h2>{{prefix}}Recovery of {{host}}: {{outcomeText}}</h2>
<p>{{reason}}</p>
<table ${HTML_TABLE}>
<tr><th align="left">Recovery</th><td>{{id}}</td></tr>
<tr><th align="left">Outcome</th><td>{{outcome}} ({{countsText}})</td></tr>
<tr><th align="left">Detected</th><td>{{detectedAt}} (trigger: {{trigger}})</td></tr>
<tr><th align="left">Fence</th><td>{{fence.stateText}}{{#fence.device}}, by {{fence.device}}{{/fence.device}}{{#fence.message}}<br>{{fence.message}}{{/fence.message}}</td></tr>
{{#approvedBy}}<tr><th align="left">Approved</th><td>by {{approvedBy}}</td></tr>{{/approvedBy}}
</table>

<h3>Timeline</h3>
<table ${HTML_TABLE}>
<tr><th>At</th><th>Since start</th><th>Stage</th><th>Time in stage</th><th>Reason</th></tr>
{{#timeline}}
<tr><td>{{at}}</td><td>{{offset}}</td><td>{{from}} &rarr; {{to}}</td><td>{{duration}}</td><td>{{reason}}{{#actor}} [{{actor}}]{{/actor}}</td></tr>
{{/timeline}}
</table>

<h3>Gate decisions</h3>
{{#decisions.length}}
<table ${HTML_TABLE}>
<tr><th>At</th><th>Gate</th><th>Result</th><th>Reason</th></tr>
{{#decisions}}
<tr><td>{{at}}</td><td>{{gate}}</td><td>{{result}}</td><td>{{reason}}</td></tr>
{{/decisions}}
</table>
{{/decisions.length}}
{{^decisions}}<p>None recorded.</p>{{/decisions}}

<h3>Instances ({{counts.total}})</h3>
{{#instances.length}}
<table ${HTML_TABLE}>
<tr><th>Name</th><th>ID</th><th>Project</th><th>Fate</th></tr>
{{#instances}}
<tr><td>{{name}}</td><td>{{id}}</td><td>{{projectId}}</td><td>{{fate}}</td></tr>
{{/instances}}
</table>
{{/instances.length}}
{{^instances}}<p>None.</p>{{/instances}}

{{#locksLeft.length}}
<h3>Left locked</h3>
<p>lifeboat could not unlock these servers; their owners cannot stop, resize or delete them until they are unlocked (lifeboat tries again at its next start-up or takeover).</p>
<ul>
{{#locksLeft}}
<li>{{name}} ({{id}}): {{error}}</li>
{{/locksLeft}}
</ul>
{{/locksLeft.length}}

{{#fence.attempts.length}}
<h3>Fence devices tried</h3>
<ul>
{{#fence.attempts}}
<li>{{device}} ({{driver}}): {{#ok}}ok{{/ok}}{{^ok}}<b>FAILED</b>{{/ok}}, power {{state}} &ndash; {{message}}</li>
{{/fence.attempts}}
</ul>
{{/fence.attempts.length}}

{{#tenants.length}}
<h3>Tenants told</h3>
<ul>
{{#tenants}}
<li>project {{projectId}}{{#projectName}} ({{projectName}}){{/projectName}}: {{recipientsText}}{{#problems}}; {{.}}{{/problems}}</li>
{{/tenants}}
</ul>
{{/tenants.length}}

<h3>Alerts</h3>
<ul>
{{#alerts}}
<li>{{alertname}} ({{status}} since {{startsAt}}){{#generatorURL}} <a href="{{generatorURL}}">source</a>{{/generatorURL}}</li>
{{/alerts}}
{{^alerts}}<li>none (trigger: {{trigger}})</li>{{/alerts}}
</ul>

${LINKS_HTML}
${HTML_FOOT}`;

const BLOCKED_TEXT = `Recovery {{id}} of host {{host}} is blocked: {{blockReason}}

Blocking gates: {{blockedGatesText}}
{{#previousGatesText}}
What blocks it changed: it was blocked by {{previousGatesText}}; this replaces the earlier notice.
{{/previousGatesText}}
Nothing has been done to the host yet: it is not fenced, its instances are not moved.

{{#approvable}}
To let the recovery go ahead (fence {{host}}, then evacuate its instances), run:

    {{approveCommand}}

{{/approvable}}
{{^approvable}}
This block clears on its own when its cause goes away (it is re-checked regularly); an approval alone does not lift it.

{{/approvable}}
{{#liftText}}
What lifts it: {{liftText}}

{{/liftText}}
Gate decisions
{{#decisions}}
  {{at}}  {{gate}}: {{result}} - {{reason}}
{{/decisions}}

${CONTEXT_TEXT}
`;

const BLOCKED_HTML = `${HTML_HEAD}
<h2>{{prefix}}Recovery of {{host}} is blocked</h2>
<p>{{blockReason}}</p>
<p>Blocking gates: {{blockedGatesText}}. Nothing has been done to the host yet: it is not fenced, its instances are not moved.</p>
{{#previousGatesText}}
<p>What blocks it changed: it was blocked by {{previousGatesText}}; this replaces the earlier notice.</p>
{{/previousGatesText}}
{{#approvable}}
<p>To let the recovery go ahead (fence {{host}}, then evacuate its instances), run:</p>
<pre>{{approveCommand}}</pre>
{{/approvable}}
{{^approvable}}
<p>This block clears on its own when its cause goes away (it is re-checked regularly); an approval alone does not lift it.</p>
{{/approvable}}
{{#liftText}}
<p>What lifts it: {{liftText}}</p>
{{/liftText}}
<table ${HTML_TABLE}>
<tr><th>At</th><th>Gate</th><th>Result</th><th>Reason</th></tr>
{{#decisions}}
<tr><td>{{at}}</td><td>{{gate}}</td><td>{{result}}</td><td>{{reason}}</td></tr>
{{/decisions}}
</table>
<p>Detected {{detectedAt}} (trigger: {{trigger}}){{#counts.total}}; {{counts.total}} instance(s) on the host{{/counts.total}}; recovery {{id}}.</p>
<ul>
{{#alerts}}
<li>{{alertname}} ({{status}} since {{startsAt}}){{#generatorURL}} <a href="{{generatorURL}}">source</a>{{/generatorURL}}</li>
{{/alerts}}
</ul>
${LINKS_HTML}
${HTML_FOOT}`;

const FENCE_FAILED_TEXT = `PAGE: fencing of host {{host}} failed (recovery {{id}}).

Nothing was evacuated. The host's state is unknown: it may still run its instances, so
lifeboat will not start them elsewhere (two copies of one VM would corrupt its disks).
Its instances stay down until someone acts.

Host power state: {{fence.stateText}}
{{#fence.message}}
{{fence.message}}
{{/fence.message}}
{{#fence.attempts}}
  {{device}} ({{driver}}): {{#ok}}ok{{/ok}}{{^ok}}FAILED{{/ok}}, power {{state}} - {{message}}
{{/fence.attempts}}
{{reason}}

What to do: check the host out of band (BMC, console, hands in the datacenter). Once you
are certain it is powered off, start the evacuation with:

    {{confirmOffCommand}}

${CONTEXT_TEXT}
`;

const FENCE_FAILED_HTML = `${HTML_HEAD}
<h2 style="color: #b00">{{prefix}}PAGE: fencing of {{host}} failed</h2>
<p><b>Nothing was evacuated.</b> The host's state is unknown: it may still run its instances, so lifeboat
will not start them elsewhere (two copies of one VM would corrupt its disks). Its instances stay down until someone acts.</p>
<p>Host power state: {{fence.stateText}}{{#fence.message}}<br>{{fence.message}}{{/fence.message}}</p>
<ul>
{{#fence.attempts}}
<li>{{device}} ({{driver}}): {{#ok}}ok{{/ok}}{{^ok}}<b>FAILED</b>{{/ok}}, power {{state}} &ndash; {{message}}</li>
{{/fence.attempts}}
</ul>
<p>{{reason}}</p>
<p>What to do: check the host out of band (BMC, console, hands in the datacenter). Once you are certain it is powered off, start the evacuation with:</p>
<pre>{{confirmOffCommand}}</pre>
<p>Detected {{detectedAt}} (trigger: {{trigger}}){{#counts.total}}; {{counts.total}} instance(s) on the host{{/counts.total}}; recovery {{id}}.</p>
<ul>
{{#alerts}}
<li>{{alertname}} ({{status}} since {{startsAt}}){{#generatorURL}} <a href="{{generatorURL}}">source</a>{{/generatorURL}}</li>
{{/alerts}}
</ul>
${LINKS_HTML}
${HTML_FOOT}`;

const STORM_TEXT = `The storm guard tripped at {{at}}: {{reason}}

{{hostCount}} host(s) are held: lifeboat fences and evacuates none of them, and holds every
host that fails from now on too. Each one waits until an operator approves it{{#until}}, or
until {{until}} if no other host fails by then (each new failure pushes that time back){{/until}}.
{{#hosts}}
  - {{.}}
{{/hosts}}

So many hosts failing at once is more often a network partition or a monitoring outage than
real failures. Check before approving any of them.
${LINKS_TEXT}
`;

const STORM_HTML = `${HTML_HEAD}
<h2 style="color: #b00">{{prefix}}Storm guard tripped</h2>
<p>At {{at}}: {{reason}}</p>
<p>{{hostCount}} host(s) are held: lifeboat fences and evacuates none of them, and holds every host that fails from now on too. Each one waits until an operator approves it{{#until}}, or until {{until}} if no other host fails by then (each new failure pushes that time back){{/until}}.</p>
<ul>
{{#hosts}}
<li>{{.}}</li>
{{/hosts}}
</ul>
<p>So many hosts failing at once is more often a network partition or a monitoring outage than real failures. Check before approving any of them.</p>
${LINKS_HTML}
${HTML_FOOT}`;

const UNKNOWN_HOSTS_TEXT = `Since {{since}}, {{alertCount}} alert(s) named {{hostCount}} host(s) that lifeboat cannot act on:
none has a fencing device in fencing.hosts, and Nova has no nova-compute service by that name.
They are recorded in the journal as ignored, with the reason; no recovery was started for them.

{{#hosts}}
  - {{host}}{{#likely}}  (probably {{likely}}){{/likely}}
{{/hosts}}
{{#moreCount}}
  ... and {{moreCount}} more
{{/moreCount}}

{{#anyLikely}}
A name marked "probably" differs from a host lifeboat knows only in case, a trailing dot or a
domain: the alerts do not name hosts the way Nova and fencing.hosts do. Fix alerts.host_label
or alerts.host_pattern; Alertmanager's next re-send of each alert is then routed again.
{{/anyLikely}}
Otherwise look at the Prometheus relabelling that sets the host label and at the alert
rule. lifeboat sends at most one such notice per alerts.unknown_hosts.notify_interval_seconds.
${LINKS_TEXT}
`;

const UNKNOWN_HOSTS_HTML = `${HTML_HEAD}
<h2>{{prefix}}Alerts for hosts lifeboat cannot act on</h2>
<p>Since {{since}}, {{alertCount}} alert(s) named {{hostCount}} host(s) that lifeboat cannot act on: none has a fencing device in fencing.hosts, and Nova has no nova-compute service by that name. They are recorded in the journal as ignored, with the reason; no recovery was started for them.</p>
<ul>
{{#hosts}}
<li>{{host}}{{#likely}} (probably <b>{{likely}}</b>){{/likely}}</li>
{{/hosts}}
{{#moreCount}}<li>&hellip; and {{moreCount}} more</li>{{/moreCount}}
</ul>
{{#anyLikely}}
<p>A name marked "probably" differs from a host lifeboat knows only in case, a trailing dot or a domain: the alerts do not name hosts the way Nova and fencing.hosts do. Fix <code>alerts.host_label</code> or <code>alerts.host_pattern</code>; Alertmanager's next re-send of each alert is then routed again.</p>
{{/anyLikely}}
<p>Otherwise look at the Prometheus relabelling that sets the host label and at the alert rule. lifeboat sends at most one such notice per <code>alerts.unknown_hosts.notify_interval_seconds</code>.</p>
${LINKS_HTML}
${HTML_FOOT}`;

const TENANT_TEXT = `Hello,

The compute host {{host}} of the cloud failed at {{detectedAt}}. It ran {{counts.total}}
instance(s) of your project {{projectLabel}}.

{{#instances}}
  - {{name}} ({{id}}): {{tenantFate}}
{{/instances}}

{{#anyEvacuated}}
Instances restarted on another host were booted again from their disks: for your
applications this was a sudden power loss. Please check that they came back as expected.
{{/anyEvacuated}}
{{#anyNotRecovered}}
Instances that were not recovered are still down and need your action (or your cloud
operators' help).
{{/anyNotRecovered}}

Reference: {{id}}. Please quote it if you contact your cloud operators.
`;

const TENANT_HTML = `${HTML_HEAD}
<p>Hello,</p>
<p>The compute host {{host}} of the cloud failed at {{detectedAt}}. It ran {{counts.total}} instance(s) of your project {{projectLabel}}.</p>
<table ${HTML_TABLE}>
<tr><th>Instance</th><th>ID</th><th>What happened</th></tr>
{{#instances}}
<tr><td>{{name}}</td><td>{{id}}</td><td>{{tenantFate}}</td></tr>
{{/instances}}
</table>
{{#anyEvacuated}}
<p>Instances restarted on another host were booted again from their disks: for your applications this was a sudden power loss. Please check that they came back as expected.</p>
{{/anyEvacuated}}
{{#anyNotRecovered}}
<p>Instances that were not recovered are still down and need your action (or your cloud operators' help).</p>
{{/anyNotRecovered}}
<p>Reference: {{id}}. Please quote it if you contact your cloud operators.</p>
${HTML_FOOT}`;

export const DEFAULT_TEMPLATES: Record<MessageKind, TemplateSet> = {
  "operator-summary": {
    subject: "{{prefix}}[lifeboat] {{host}}: recovery {{outcomeText}} ({{counts.evacuated}}/{{counts.total}} instances evacuated)",
    text: SUMMARY_TEXT,
    html: SUMMARY_HTML,
  },
  blocked: {
    subject: "{{prefix}}[lifeboat] {{host}}: recovery blocked{{#approvable}}, needs approval{{/approvable}}",
    text: BLOCKED_TEXT,
    html: BLOCKED_HTML,
  },
  "fence-failed": {
    subject: "{{prefix}}[lifeboat] PAGE {{host}}: fencing failed, nothing evacuated, host state unknown",
    text: FENCE_FAILED_TEXT,
    html: FENCE_FAILED_HTML,
  },
  storm: {
    subject: "{{prefix}}[lifeboat] storm guard tripped: {{hostCount}} host(s) held",
    text: STORM_TEXT,
    html: STORM_HTML,
  },
  "unknown-hosts": {
    subject: "{{prefix}}[lifeboat] alerts for {{hostCount}} host(s) lifeboat cannot act on were ignored",
    text: UNKNOWN_HOSTS_TEXT,
    html: UNKNOWN_HOSTS_HTML,
  },
  tenant: {
    // Host, time and reference: two incidents never reach a project under the same subject.
    subject: "{{prefix}}Host {{host}} failed at {{detectedAt}}: {{counts.evacuated}} of {{counts.total}} instance(s) of project {{projectLabel}} restarted elsewhere (ref {{id}})",
    text: TENANT_TEXT,
    html: TENANT_HTML,
  },
};
