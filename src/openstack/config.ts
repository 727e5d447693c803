import { z } from "zod";
import { secret, url } from "../util/zod.js";

/**
 * How lifeboat reaches OpenStack. Credentials come from exactly one source: `auth` here,
 * a `cloud` entry of clouds.yaml, or — when neither is given — the `OS_*` environment
 * variables, as the openstack CLI reads them.
 */
export const openstackAuthSchema = z.strictObject({
  auth_url: url().describe("Keystone v3 URL, e.g. https://keystone.example:5000/v3."),
  username: z.string().optional().describe("User name (with user_domain_name or user_domain_id)."),
  user_id: z.string().optional().describe("User id (instead of username)."),
  password: secret().optional().describe("Password of the user (password auth)."),
  user_domain_name: z.string().optional().describe("Domain of the user, by name (e.g. Default)."),
  user_domain_id: z.string().optional().describe("Domain of the user, by id."),
  project_name: z.string().optional().describe("Project to scope the token to (with project_domain_name or project_domain_id)."),
  project_id: z.string().optional().describe("Project id to scope the token to."),
  project_domain_name: z.string().optional().describe("Domain of the project, by name."),
  project_domain_id: z.string().optional().describe("Domain of the project, by id."),
  application_credential_id: z.string().optional().describe("Application credential id (application-credential auth; no project scope)."),
  application_credential_name: z.string().optional().describe("Application credential name (with username and user domain)."),
  application_credential_secret: secret().optional().describe("Application credential secret."),
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
  retries: z.number().int().nonnegative().default(3).describe(
      "Retries of Keystone authentication (getting a token) on 5xx, 429 and connection errors. Calls to the services are not retried here: each step's own policy (recovery.step_retries, evacuation.retries) retries them.",
    ),
  nova_rate_limit: z
    .strictObject({
      requests_per_second: z
        .number()
        .positive()
        .default(50)
        .describe(
          "Most requests per second lifeboat sends to Nova, all callers together (gates, isolation, evacuations, the monitor, notifications), with bursts of one second's worth. An evacuated instance costs Nova 3 requests of its own (lock, evacuate, unlock) plus its share of the failed host's listings.",
        ),
      max_retry_after_seconds: z
        .number()
        .nonnegative()
        .default(60)
        .describe(
          "A 429 or 503 answer from Nova with Retry-After pauses every request to Nova for that long, at most this long; idempotent calls are then sent again, an evacuate never is.",
        ),
    })
    .prefault({})
    .describe("The pace of lifeboat's calls to Nova (one pace per lifeboat process)."),
});
export type OpenStackConfig = z.output<typeof openstackSchema>;
