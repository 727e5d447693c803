import { z } from "zod";
import { secret, url } from "../util/zod.js";

/**
 * Fencing configuration: devices per host (an escalation chain tried in order), with
 * per-driver defaults merged under each host's device before validation.
 */

const common = {
  name: z.string().min(1).optional().describe("Label of this device in logs, tables and results (default: driver and address). Never put credentials here."),
  timeout_seconds: z
    .number()
    .positive()
    .default(30)
    .describe("Deadline for one whole status/off/on operation (commands, retries, power wait and polling), seconds."),
  command_timeout_seconds: z
    .number()
    .positive()
    .default(10)
    .describe("Deadline for one device command (one ipmitool or virsh run, one HTTP request); the process is killed past it."),
  retries: z.number().int().nonnegative().default(2).describe("Retries of a failed device command, with exponential backoff."),
  retry_delay_seconds: z.number().nonnegative().default(0.5).describe("First backoff delay; doubles with each retry (capped at 8 s)."),
  power_wait_seconds: z
    .number()
    .nonnegative()
    .default(0)
    .describe(
      "Wait after the power command before the first status read. 0: read at once. Only for a BMC known to report the new state before it has acted (fence agents' power_wait; fence_ipmilan uses 2 s).",
    ),
  power_timeout_seconds: z.number().positive().default(20).describe("How long to poll for the wanted state after a power command."),
  poll_interval_seconds: z.number().positive().default(1).describe("Pause between two status reads while the state is not yet the wanted one (fence agents: 1 s)."),
  confirm_interval_seconds: z
    .number()
    .nonnegative()
    .default(0.1)
    .describe(
      "The wanted state counts only when two consecutive reads, each its own device call, say it: the pause between the first such read and the confirming one. Raise it for a BMC whose answer may flip back.",
    ),
};

export const ipmiDeviceSchema = z.strictObject({
  driver: z.literal("ipmi"),
  address: z.string().min(1).describe("BMC host name or IP address."),
  port: z.number().int().min(1).max(65535).default(623).describe("BMC UDP port (ipmitool -p)."),
  username: z.string().min(1).describe("BMC user (ipmitool -U); power control needs OPERATOR privilege or more."),
  password: secret().describe("BMC password; passed to ipmitool through the environment (-E), never argv."),
  interface: z.enum(["lanplus", "lan"]).default("lanplus").describe("ipmitool -I: lanplus (IPMI 2.0 RMCP+) or lan (IPMI 1.5)."),
  cipher_suite: z.number().int().min(0).max(17).optional().describe("ipmitool -C; unset lets ipmitool choose."),
  privilege: z.enum(["CALLBACK", "USER", "OPERATOR", "ADMINISTRATOR"]).default("ADMINISTRATOR").describe("ipmitool -L: session privilege level."),
  ipmitool_timeout_seconds: z.number().int().positive().default(1).describe("ipmitool -N: per-try timeout."),
  ipmitool_retries: z
    .number()
    .int()
    .min(1, "must be at least 1: ipmitool reads -R 0 as its default of 4 retries (~20 s against a dead BMC)")
    .default(2)
    .describe("ipmitool -R: retries per command (at least 1; ipmitool treats 0 as 'use the default of 4')."),
  ipmitool_path: z.string().min(1).default("ipmitool").describe("The ipmitool binary (run directly, never through a shell)."),
  ...common,
});

export const redfishDeviceSchema = z.strictObject({
  driver: z.literal("redfish"),
  address: url().describe("BMC base URL, e.g. https://10.0.0.7 or https://bmc-7:8443."),
  username: z.string().min(1).describe("BMC user."),
  password: secret().describe("BMC password (HTTP basic auth, or the session login body)."),
  auth: z
    .enum(["basic", "session"])
    .default("basic")
    .describe("basic: credentials on every request; session: log in (X-Auth-Token) per operation and log out afterwards."),
  system_id: z
    .string()
    .min(1)
    .optional()
    .describe("ComputerSystem id (System.Embedded.1) or path (/redfish/v1/Systems/1); default: the only member of /redfish/v1/Systems."),
  verify_tls: z.boolean().default(true).describe("Verify the BMC's TLS certificate (against ca_file when given)."),
  ca_file: z.string().min(1).optional().describe("PEM file of the CA (or the self-signed certificate) that signed the BMC's certificate."),
  ...common,
});

export const libvirtDeviceSchema = z.strictObject({
  driver: z.literal("libvirt"),
  uri: z.string().min(1).describe("libvirt connection URI, e.g. qemu+ssh://root@kvm-1/system."),
  domain: z.string().min(1).describe("Domain name or UUID of the compute node VM."),
  virsh_path: z.string().min(1).default("virsh").describe("The virsh binary (run directly with LC_ALL=C, never through a shell)."),
  ...common,
});

export const noopDeviceSchema = z.strictObject({
  driver: z.literal("noop"),
  ...common,
});

export const fenceDeviceSchema = z.discriminatedUnion("driver", [
  ipmiDeviceSchema,
  redfishDeviceSchema,
  libvirtDeviceSchema,
  noopDeviceSchema,
]);
export type FenceDeviceConfig = z.output<typeof fenceDeviceSchema>;
export type IpmiDeviceConfig = z.output<typeof ipmiDeviceSchema>;
export type RedfishDeviceConfig = z.output<typeof redfishDeviceSchema>;
export type LibvirtDeviceConfig = z.output<typeof libvirtDeviceSchema>;
export type NoopDeviceConfig = z.output<typeof noopDeviceSchema>;
/** The timing fields every device has. */
export type CommonDeviceConfig = Pick<
  FenceDeviceConfig,
  | "name"
  | "timeout_seconds"
  | "command_timeout_seconds"
  | "retries"
  | "retry_delay_seconds"
  | "power_wait_seconds"
  | "power_timeout_seconds"
  | "poll_interval_seconds"
  | "confirm_interval_seconds"
>;

export const hostFencingSchema = z.strictObject({
  devices: z.array(fenceDeviceSchema).min(1).describe("Escalation chain: tried in order until one device confirms off."),
});
export type HostFencingConfig = z.output<typeof hostFencingSchema>;

const fencingInputSchema = z.strictObject({
  unsafe_noop: z
    .boolean()
    .default(false)
    .describe("Allow the noop driver, which fences nothing. Only for tests; logged loudly."),
  defaults: z
    .partialRecord(z.enum(["ipmi", "redfish", "libvirt", "noop"]), z.record(z.string(), z.unknown()))
    .default({})
    .describe("Per-driver fields merged under every device of that driver (e.g. a shared username)."),
  hosts: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("Per-host fencing: a single device ({driver: ipmi, address: …}) or {devices: [ … ]}."),
});

/**
 * Each host entry is normalised to `{devices: [...]}`, the driver defaults merged under
 * every device, and then validated, so errors keep the host's own path
 * (`fencing.hosts.compute-1.address: required`).
 */
export const fencingSchema = fencingInputSchema.transform((input, ctx) => {
  const hosts: Record<string, HostFencingConfig> = {};
  for (const [host, raw] of Object.entries(input.hosts)) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      ctx.issues.push({ code: "custom", message: "expected a device or {devices: [...]}", path: ["hosts", host], input: raw });
      continue;
    }
    const entry = raw as Record<string, unknown>;
    const single = !("devices" in entry);
    const list: unknown[] = single ? [entry] : Array.isArray(entry.devices) ? entry.devices : [];
    if (!single && !Array.isArray(entry.devices)) {
      ctx.issues.push({ code: "custom", message: "expected a list of devices", path: ["hosts", host, "devices"], input: entry.devices });
      continue;
    }
    if (!single) {
      const extra = Object.keys(entry).filter((k) => k !== "devices");
      if (extra.length) ctx.issues.push({ code: "custom", message: `unknown key(s) ${extra.join(", ")} beside devices`, path: ["hosts", host], input: raw });
    }
    const devices: FenceDeviceConfig[] = [];
    list.forEach((dev, i) => {
      const base = single ? ["hosts", host] : ["hosts", host, "devices", i];
      const driver = dev !== null && typeof dev === "object" ? (dev as Record<string, unknown>).driver : undefined;
      const defaults = typeof driver === "string" ? (input.defaults as Record<string, Record<string, unknown> | undefined>)[driver] : undefined;
      const merged = { ...(defaults ?? {}), ...(dev as Record<string, unknown>) };
      const parsed = fenceDeviceSchema.safeParse(merged);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.issues.push({ ...issue, path: [...base, ...issue.path] } as never);
        return;
      }
      const d = parsed.data;
      const polling = d.power_wait_seconds + d.power_timeout_seconds + d.confirm_interval_seconds;
      if (d.timeout_seconds <= polling) {
        ctx.issues.push({
          code: "custom",
          message: `must exceed power_wait_seconds + power_timeout_seconds + confirm_interval_seconds (${Math.round(polling * 1000) / 1000}): it bounds the whole operation`,
          path: [...base, "timeout_seconds"],
          input: d.timeout_seconds,
        });
        return;
      }
      if (parsed.data.driver === "noop" && !input.unsafe_noop) {
        ctx.issues.push({ code: "custom", message: "the noop driver fences nothing; it needs fencing.unsafe_noop: true", path: [...base, "driver"], input: "noop" });
        return;
      }
      devices.push(parsed.data);
    });
    if (list.length === 0) ctx.issues.push({ code: "custom", message: "at least one device is required", path: ["hosts", host, "devices"], input: list });
    hosts[host] = { devices };
  }
  // `defaults` stays out of the result: it is merged into every device already, and its
  // raw values (a shared password) must not ride along unredacted.
  return { unsafe_noop: input.unsafe_noop, hosts };
});
export type FencingConfig = z.output<typeof fencingSchema>;
