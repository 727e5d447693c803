import { z } from "zod";

export const evacuationSchema = z.strictObject({
  driver: z.enum(["nova"]).default("nova").describe("nova: the Nova API (the only driver)."),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(128)
    .default(8)
    .describe(
      "Evacuations lifeboat drives at once for one recovery (one failed host), within site_concurrency. One it only watches (a call that got no answer, or an evacuation still running past instance_timeout_seconds) gives its slot to the next instance.",
    ),
  site_concurrency: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(32)
    .describe(
      "Evacuations in flight in Nova at once across every recovery of this lifeboat (the leader), from the evacuate call until Nova's evacuation ended. Filled in priority order across recoveries: instance priority, then the older recovery, then the instance name. A call that got no answer counts until Nova's records tell its fate; one still running past instance_timeout_seconds stops counting. After a restart or a takeover, the evacuations the journal shows in flight count first.",
    ),
  zone_concurrency: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe("Evacuations in flight at once from the failed hosts of one availability zone (the zone Nova gives the host's nova-compute service), within site_concurrency. 0: no bound per zone."),
  stagger_ms: z.number().int().nonnegative().default(0).describe("Pause between starting two evacuations."),
  instance_timeout_seconds: z.number().positive().default(600).describe("Give up tracking one evacuation after this long."),
  retries: z.number().int().nonnegative().default(2).describe("Re-issue a failed evacuation up to this many times."),
  no_answer_window_seconds: z
    .number()
    .positive()
    .default(120)
    .describe(
      "How long nova-api may still act on an evacuate call that got no answer (lost connection, timeout, a gateway's 502/504, lifeboat stopped while the call was out). Until then lifeboat only watches Nova's records; after it, an evacuation Nova started is followed, and none means the call did nothing: it is sent again. Make it longer than any queue in front of nova-api.",
    ),
  poll_interval_seconds: z.number().positive().default(2).describe("Between two looks at a running evacuation (migration record and server)."),
  selection: z
    .strictObject({
      mode: z.enum(["all", "opted-in"]).default("all").describe("all instances, or only those opted in by metadata or trait."),
      metadata_key: z.string().default("HA_Enabled").describe("Server metadata key whose true value opts an instance in (Masakari's HA_Enabled)."),
      traits: z.array(z.string()).default(["evacuable"]).describe("Flavor extra spec or image property keys whose true value opts in (InstanceHA's evacuable)."),
      exclude_name_patterns: z.array(z.string()).default([]).describe("Glob patterns of instance names never touched."),
    })
    .prefault({}),
  priority_metadata_key: z.string().default("lifeboat:priority").describe("Server metadata key: higher numbers are evacuated first."),
  error_instances: z.enum(["evacuate", "skip"]).default("evacuate").describe("What to do with instances already in ERROR."),
  lock_instances: z.boolean().default(true).describe("Lock each server during its evacuation (with a reason at microversion ≥ 2.73)."),
  reserved_hosts: z.array(z.string()).default([]).describe("Target hosts tried in order; empty lets the scheduler choose."),
});
export type EvacuationConfig = z.output<typeof evacuationSchema>;
