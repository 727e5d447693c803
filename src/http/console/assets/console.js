// lifeboat console: the page's live sections over server-sent events, and times shown
// relative to now. Plain ES module, no dependencies; the pages work without it (no live
// updates then: reload to see changes).

const body = document.body;
const liveUrl = body.dataset.live;
const banner = document.getElementById("live-state");

/** "12 s ago", "3 min ago", "2 h 5 min ago" */
export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min ago`;
  return `${Math.floor(h / 24)} days ago`;
}

function refreshTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const at = Date.parse(t.dateTime);
    if (Number.isNaN(at)) continue;
    if (!t.title) t.title = t.textContent;
    if (t.hasAttribute("data-age")) t.textContent = ago(Date.now() - at);
  }
}

/** Replace a section's HTML, keeping what the operator was doing in it (ticks, open details). */
function replaceSection(el, html) {
  const ticked = new Set([...el.querySelectorAll("input[type=checkbox]:checked")].map((i) => `${i.name}=${i.value}`));
  const opened = [...el.querySelectorAll("details")].map((d) => d.open);
  el.innerHTML = html;
  for (const i of el.querySelectorAll("input[type=checkbox]")) if (ticked.has(`${i.name}=${i.value}`)) i.checked = true;
  const details = el.querySelectorAll("details");
  if (details.length === opened.length) details.forEach((d, n) => (d.open = opened[n]));
  refreshTimes(el);
  el.dispatchEvent(new CustomEvent("lifeboat:updated", { bubbles: true }));
}

function say(text) {
  if (!banner) return;
  banner.hidden = !text;
  banner.textContent = text ?? "";
}

function follow(url) {
  const events = new EventSource(url);
  events.addEventListener("open", () => say(null));
  events.addEventListener("section", (e) => {
    const { id, html } = JSON.parse(e.data);
    const el = document.getElementById(id);
    if (el) replaceSection(el, html);
  });
  events.addEventListener("expired", () => {
    events.close();
    location.assign(`/console/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  });
  events.addEventListener("busy", () => {
    events.close();
    say("Too many consoles are watching this lifeboat: live updates are off; reload to see changes.");
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) say("Live updates stopped (logged out?): reload the page.");
    else say("Live updates interrupted: reconnecting…");
  });
}

refreshTimes(document);
setInterval(() => refreshTimes(document), 15_000);
if (liveUrl && "EventSource" in window) follow(liveUrl);
