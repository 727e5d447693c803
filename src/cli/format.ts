import { table } from "../util/table.js";
import type { Recovery, RecoveryDetail } from "../domain/model.js";
import { locksLeft } from "../domain/unlocks.js";

export function recoveriesTable(rows: Recovery[]): string {
  if (rows.length === 0) return "no recoveries";
  return table(
    ["ID", "HOST", "STATE", "TRIGGER", "CREATED", "REASON"],
    rows.map((r) => [r.id, r.host, r.dryRun ? `${r.state} (dry run)` : r.state, r.trigger, r.createdAt, truncate(r.reason, 80)]),
  );
}

export function recoveryText(d: RecoveryDetail): string {
  const out: string[] = [];
  out.push(`recovery ${d.id}  host ${d.host}  state ${d.state}${d.dryRun ? " (dry run)" : ""}  fence ${d.fenceState}`);
  out.push(`detected ${d.detectedAt}  trigger ${d.trigger}${d.approvedBy ? `  approved by ${d.approvedBy}` : ""}`);
  out.push("", "timeline:");
  for (const t of d.timeline) out.push(`  ${t.at}  ${(t.from ?? "-").padEnd(10)} → ${t.to.padEnd(10)}  ${t.reason}${t.actor ? `  [${t.actor}]` : ""}`);
  if (d.decisions.length) {
    out.push("", "gate decisions:");
    for (const g of d.decisions) out.push(`  ${g.at}  ${g.gate.padEnd(14)} ${g.result.padEnd(9)} ${g.reason}`);
  }
  if (d.instances.length) {
    out.push("", "instances:");
    out.push(
      indent(
        table(
          ["NAME", "ID", "PROJECT", "WAS", "STATE", "TARGET", "TRIES", "NOTE"],
          d.instances.map((i) => [i.name, i.instanceId, i.projectId, i.originalStatus, i.state, i.targetHost ?? "", String(i.attempts), truncate(i.error ?? i.note ?? "", 60)]),
        ),
      ),
    );
  }
  const locked = locksLeft(d);
  if (locked.length) {
    out.push("", "left locked (lifeboat could not unlock them; their owners cannot stop, resize or delete them until they are unlocked):");
    out.push(indent(table(["NAME", "ID", "SINCE", "WHY"], locked.map((l) => [l.name, l.instanceId, l.at, truncate(l.error, 80)]))));
  }
  if (d.notifications.length) {
    out.push("", `notifications: ${d.delivery?.text ?? ""}`.trimEnd());
    for (const n of d.notifications) out.push(`  ${n.channel.padEnd(10)} ${n.kind.padEnd(16)} ${n.recipient.padEnd(30)} ${n.state === "done" ? `done: ${n.subject}` : n.state}${n.error ? `: ${n.error}` : ""}`);
  }
  return out.join("\n");
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
