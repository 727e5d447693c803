import { z } from "zod";
import { secret, url } from "../config/zod-helpers.js";

/**
 * How lifeboat reaches OpenStack. Credentials come from exactly one source: `auth` here,
 * a `cloud` entry of clouds.yaml, or — when neither is given — the `OS_*` environment
 * variables, as the openstack CLI reads them.
 */
export const openstackAuthSchema = z.strictObject({
  auth_url: url(),
  username: z.string().optional(),
  user_id: z.string().optional(),
  password: secret().optional(),
  user_domain_name: z.string().optional(),
  user_domain_id: z.string().optional(),
  project_name: z.string().optional(),
  project_id: z.string().optional(),
  project_domain_name: z.string().optional(),
  project_domain_id: z.string().optional(),
  application_credential_id: z.string().optional(),
  application_credential_name: z.string().optional(),
  application_credential_secret: secret().optional(),
});

export const openstackSchema = z.strictObject({
  cloud: z.string().optional().describe("Name of a cloud in clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)."),
  clouds_file: z.string().optional().describe("Explicit clouds.yaml path."),
  auth: openstackAuthSchema.optional().describe("Inline Keystone v3 credentials (password or application credential)."),
  region_name: z.string().optional().describe("Catalog region; overrides the cloud's or OS_REGION_NAME."),
  interface: z
    .enum(["public", "internal", "admin"])
    .optional()
    .describe("Catalog interface; overrides the cloud's or OS_INTERFACE. Default: public."),
  endpoint_override: z
    .partialRecord(z.enum(["compute", "identity", "placement"]), url())
    .default({})
    .describe("Use these endpoints instead of the catalog's."),
  ca_file: z.string().optional().describe("CA bundle for TLS to Keystone and the services (overrides cacert / OS_CACERT)."),
  insecure: z.boolean().default(false).describe("Skip TLS certificate verification (labs only)."),
  timeout_seconds: z.number().positive().default(30).describe("Bound of every single HTTP request."),
  retries: z.number().int().nonnegative().default(3).describe("Retries of idempotent calls on 5xx and connection errors."),
});
export type OpenStackConfig = z.output<typeof openstackSchema>;
