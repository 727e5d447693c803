import type { InstanceInfo } from "./ports/cloud.js";
import type { InstanceState } from "./model.js";

/** The part of the evacuation settings that selects and orders instances. */
export interface SelectionPolicy {
  selection: { mode: "all" | "opted-in"; metadata_key: string; traits: readonly string[]; exclude_name_patterns: readonly string[] };
  priority_metadata_key: string;
  error_instances: "evacuate" | "skip";
}

/**
 * Which instances of a failed host lifeboat evacuates, and in what order. Instances that
 * are not protected or are excluded are reported as such, never silently dropped.
 */
export interface Classified {
  state: Extract<InstanceState, "pending" | "skipped" | "unprotected">;
  priority: number;
  note?: string;
}

/** Nova evacuates only servers whose vm_state is active, stopped or error. */
const EVACUABLE_STATUS = new Set(["ACTIVE", "SHUTOFF", "ERROR"]);
const TRUE = new Set(["true", "1", "yes", "on"]);

export function classifyInstance(inst: InstanceInfo, cfg: SelectionPolicy): Classified {
  const priority = priorityOf(inst, cfg.priority_metadata_key);
  const pattern = cfg.selection.exclude_name_patterns.find((p) => globToRegExp(p).test(inst.name));
  if (pattern !== undefined) return { state: "skipped", priority, note: `excluded by name pattern "${pattern}"` };
  if (inst.status === "ERROR" && cfg.error_instances === "skip") {
    return { state: "skipped", priority, note: "was in ERROR before the failure (error_instances: skip)" };
  }
  if (!EVACUABLE_STATUS.has(inst.status)) {
    return { state: "skipped", priority, note: `status ${inst.status} cannot be evacuated (Nova needs ACTIVE, SHUTOFF or ERROR)` };
  }
  if (cfg.selection.mode === "opted-in" && !isOptedIn(inst, cfg)) {
    const how = [`metadata ${cfg.selection.metadata_key}=true`, ...cfg.selection.traits.map((t) => `flavor/image ${t}=true`)].join(" or ");
    return { state: "unprotected", priority, note: `not opted in to HA (${how})` };
  }
  return { state: "pending", priority };
}

export function isOptedIn(inst: InstanceInfo, cfg: SelectionPolicy): boolean {
  const meta = inst.metadata[cfg.selection.metadata_key];
  if (meta !== undefined && TRUE.has(meta.toLowerCase())) return true;
  return cfg.selection.traits.some((t) => {
    const v = inst.flavor.extraSpecs[t] ?? inst.flavor.extraSpecs[`trait:${t}`] ?? inst.imageProperties[t];
    return v !== undefined && (TRUE.has(v.toLowerCase()) || v.toLowerCase() === "required");
  });
}

function priorityOf(inst: InstanceInfo, key: string): number {
  const v = Number.parseInt(inst.metadata[key] ?? "", 10);
  return Number.isFinite(v) ? v : 0;
}

/** Shell-style glob (`*`, `?`) to an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
