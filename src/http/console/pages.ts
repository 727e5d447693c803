import { RECOVERY_STATES, type RecoveryState } from "../../domain/model.js";
import type { ConsoleChange, ConsoleDeps, RecoveryQuery } from "./deps.js";
import type { LiveView } from "./live.js";
import type { ConsoleRenderer } from "./render.js";
import { heldView, hostPageView, progress, recoveryRow, recoveryView, statusView } from "./views.js";

/**
 * The console's pages: each builds one view from ConsoleDeps and names its live sections
 * (element id → template), so the page and its live updates render the same templates.
 */
export interface Page {
  template: string;
  title: string;
  view: Record<string, unknown>;
  /** Element id → section template, for live updates. */
  sections: Record<string, string>;
  /** The query of /console/events that follows this page. */
  live: string;
  nav?: "overview" | "recoveries";
}

export const PAGE_SIZE = 50;
/** Deeper pages are refused: narrow the list with a host or state instead. */
export const MAX_PAGE = 200;
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

const OVERVIEW_SECTIONS = { "sec-status": "overview-status", "sec-open": "overview-open", "sec-held": "overview-held", "sec-recent": "overview-recent" };
const RECOVERY_SECTIONS = {
  "sec-summary": "recovery-summary",
  "sec-timeline": "recovery-timeline",
  "sec-decisions": "recovery-decisions",
  "sec-fence": "recovery-fence",
  "sec-instances": "recovery-instances",
  "sec-notifications": "recovery-notifications",
};
const HOST_SECTIONS = { "sec-host": "host-summary", "sec-host-recoveries": "host-recoveries" };
const LIST_SECTIONS = { "sec-list": "recoveries-list" };

export async function overviewPage(deps: ConsoleDeps): Promise<Page> {
  const [status, silences, open, recent, held] = await Promise.all([
    deps.status(),
    deps.silences(),
    deps.recoveries({ open: true, offset: 0, limit: 500 }),
    deps.recoveries({ open: false, offset: 0, limit: 10 }),
    deps.heldHosts(),
  ]);
  // Progress bars for the few recoveries that are moving instances.
  const moving = await Promise.all(open.rows.map(async (r) => (r.state === "evacuating" || r.state === "notifying" ? progress((await deps.recovery(r.id))?.instances ?? []) : null)));
  const openRows = open.rows.map((r, i) => recoveryRow(r, { progress: moving[i] ?? null }));
  const sv = statusView(status, silences);
  return {
    template: "overview",
    title: status.storm.tripped || (status.openByState.blocked ?? 0) > 0 ? "Overview (attention)" : "Overview",
    view: {
      status: { ...sv, openOne: sv.open === 1 },
      openRows,
      hasOpen: openRows.length > 0,
      anyBlocked: openRows.some((r) => r.blocked === true),
      held: held.map(heldView),
      hasHeld: held.length > 0,
      recent: recent.rows.map((r) => recoveryRow(r)),
      hasRecent: recent.rows.length > 0,
    },
    sections: OVERVIEW_SECTIONS,
    live: "view=overview",
    nav: "overview",
  };
}

export async function recoveryPage(deps: ConsoleDeps, id: string): Promise<Page | null> {
  const d = await deps.recovery(id);
  if (!d) return null;
  const r = recoveryView(d);
  const passes = r.passes as { n: number }[];
  return {
    template: "recovery",
    title: `${d.host}: ${d.state}`,
    view: {
      r: {
        ...r,
        passes: passes.map((p, i) => ({ ...p, last: i === passes.length - 1 })),
        hasMilestones: (r.milestones as unknown[]).length > 0,
        hasSteps: d.steps.length > 0,
      },
    },
    sections: RECOVERY_SECTIONS,
    live: `view=recovery&id=${encodeURIComponent(id)}`,
  };
}

export async function hostPage(deps: ConsoleDeps, host: string): Promise<Page> {
  const h = await deps.host(host);
  return { template: "host", title: `host ${host}`, view: { h: hostPageView(h) }, sections: HOST_SECTIONS, live: `view=host&host=${encodeURIComponent(host)}` };
}

export interface ListFilter {
  host: string;
  /** "", "open", "finished" or one state. */
  state: string;
  page: number;
}

/** The list's filter from a query string; null when something in it is not valid. */
export function parseListFilter(q: Record<string, unknown>): ListFilter | { error: string } {
  const host = typeof q.host === "string" ? q.host.trim() : "";
  const state = typeof q.state === "string" ? q.state : "";
  const pageText = typeof q.page === "string" ? q.page : "1";
  if (host && !HOST_NAME.test(host)) return { error: "host: expected a host name" };
  if (state && state !== "open" && state !== "finished" && !(RECOVERY_STATES as readonly string[]).includes(state)) return { error: `state: expected open, finished or one of ${RECOVERY_STATES.join(", ")}` };
  const page = Number(pageText);
  if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE) return { error: `page: expected a whole number from 1 to ${MAX_PAGE} (narrow the list by host or state for older recoveries)` };
  return { host, state, page };
}

function listQuery(f: ListFilter): RecoveryQuery {
  const q: RecoveryQuery = { offset: (f.page - 1) * PAGE_SIZE, limit: PAGE_SIZE };
  if (f.host) q.host = f.host;
  if (f.state === "open") q.open = true;
  else if (f.state === "finished") q.open = false;
  else if (f.state) q.states = [f.state as RecoveryState];
  return q;
}

export function listHref(f: ListFilter, page: number): string {
  const p = new URLSearchParams();
  if (f.host) p.set("host", f.host);
  if (f.state) p.set("state", f.state);
  if (page > 1) p.set("page", String(page));
  const s = p.toString();
  return `/console/recoveries${s ? `?${s}` : ""}`;
}

export async function listPage(deps: ConsoleDeps, f: ListFilter): Promise<Page> {
  const { rows, more } = await deps.recoveries(listQuery(f));
  const first = (f.page - 1) * PAGE_SIZE + 1;
  const stateOptions = [
    { value: "", label: "any" },
    { value: "open", label: "open (not ended)" },
    { value: "finished", label: "finished" },
    ...RECOVERY_STATES.map((s) => ({ value: s, label: s })),
  ].map((o) => ({ ...o, selected: o.value === f.state }));
  const live = new URLSearchParams({ view: "list", host: f.host, state: f.state, page: String(f.page) });
  return {
    template: "recoveries",
    title: "Recoveries",
    view: {
      filter: f,
      stateOptions,
      rows: rows.map((r) => recoveryRow(r)),
      hasRows: rows.length > 0,
      page: f.page,
      shown: rows.length > 0,
      first,
      lastShown: first + rows.length - 1,
      newer: f.page > 1 ? listHref(f, f.page - 1) : null,
      older: more && f.page < MAX_PAGE ? listHref(f, f.page + 1) : null,
    },
    sections: LIST_SECTIONS,
    live: live.toString(),
    nav: "recoveries",
  };
}

/** The live view behind `/console/events?…`, or an error for a query that names no page. */
export function liveViewFor(deps: ConsoleDeps, renderer: ConsoleRenderer, q: Record<string, unknown>): LiveView | { error: string } {
  const view = typeof q.view === "string" ? q.view : "";
  const sectionsOf = async (page: Promise<Page | null>): Promise<Record<string, string>> => {
    const p = await page;
    if (!p) return {};
    return Object.fromEntries(Object.entries(p.sections).map(([id, tpl]) => [id, renderer.fragment(tpl, p.view)]));
  };
  if (view === "overview") return { key: "overview", concerns: () => true, render: () => sectionsOf(overviewPage(deps)) };
  if (view === "recovery") {
    const id = typeof q.id === "string" ? q.id : "";
    if (!/^[\w.-]{1,100}$/.test(id)) return { error: "id: expected a recovery id" };
    return { key: `recovery:${id}`, concerns: (c: ConsoleChange) => "recoveryId" in c && c.recoveryId === id, render: () => sectionsOf(recoveryPage(deps, id)) };
  }
  if (view === "host") {
    const host = typeof q.host === "string" ? q.host : "";
    if (!HOST_NAME.test(host)) return { error: "host: expected a host name" };
    return {
      key: `host:${host}`,
      concerns: (c: ConsoleChange) => ("hostState" in c ? c.hostState === host : "recoveryId" in c && c.host === host),
      render: () => sectionsOf(hostPage(deps, host)),
    };
  }
  if (view === "list") {
    const f = parseListFilter(q);
    if ("error" in f) return f;
    return {
      key: `list:${listHref(f, f.page)}`,
      concerns: (c: ConsoleChange) => "recoveryId" in c && (!f.host || c.host === undefined || c.host === f.host),
      render: () => sectionsOf(listPage(deps, f)),
    };
  }
  return { error: "view: expected overview, recovery, host or list" };
}

