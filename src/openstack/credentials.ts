import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { Secret } from "../util/secret.js";
import { errorMessage } from "../util/errors.js";
import type { OpenStackConfig } from "./config.js";

/**
 * Where lifeboat's OpenStack credentials come from, resolved the way the openstack CLI
 * resolves them: inline `auth` in lifeboat's config, a named cloud of clouds.yaml (with
 * secure.yaml beside it), or the `OS_*` environment variables.
 */
export type AuthMethod = "password" | "application_credential";
export type EndpointInterface = "public" | "internal" | "admin";

export interface ResolvedCredentials {
  /** Human description of the source, e.g. `clouds.yaml cloud "prod" (/etc/openstack/clouds.yaml)`. */
  source: string;
  /** Keystone v3 URL, always ending in `/v3`. */
  authUrl: string;
  method: AuthMethod;
  username?: string;
  userId?: string;
  userDomainName?: string;
  userDomainId?: string;
  password?: Secret;
  projectName?: string;
  projectId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  applicationCredentialId?: string;
  applicationCredentialName?: string;
  applicationCredentialSecret?: Secret;
  regionName?: string;
  interface?: EndpointInterface;
  caFile?: string;
  insecure?: boolean;
}

export class CredentialsError extends Error {
  override name = "CredentialsError";
}

export interface CredentialSourceDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  homeDir?: string;
}

/** The flat, snake_case shape all three sources are brought to before validation. */
interface RawAuth {
  auth_url?: string;
  auth_type?: string;
  username?: string;
  user_id?: string;
  password?: Secret;
  user_domain_name?: string;
  user_domain_id?: string;
  project_name?: string;
  project_id?: string;
  project_domain_name?: string;
  project_domain_id?: string;
  default_domain?: string;
  application_credential_id?: string;
  application_credential_name?: string;
  application_credential_secret?: Secret;
  region_name?: string;
  interface?: string;
  cacert?: string;
  insecure?: boolean;
}

type SourceKind = "config" | "cloud" | "env";

/** How each field is named in each source, for error messages that say what to set. */
const FIELD_NAMES: Record<keyof RawAuth, { env: string; file: string }> = {
  auth_url: { env: "OS_AUTH_URL", file: "auth.auth_url" },
  auth_type: { env: "OS_AUTH_TYPE", file: "auth_type" },
  username: { env: "OS_USERNAME", file: "auth.username" },
  user_id: { env: "OS_USER_ID", file: "auth.user_id" },
  password: { env: "OS_PASSWORD", file: "auth.password" },
  user_domain_name: { env: "OS_USER_DOMAIN_NAME", file: "auth.user_domain_name" },
  user_domain_id: { env: "OS_USER_DOMAIN_ID", file: "auth.user_domain_id" },
  project_name: { env: "OS_PROJECT_NAME", file: "auth.project_name" },
  project_id: { env: "OS_PROJECT_ID", file: "auth.project_id" },
  project_domain_name: { env: "OS_PROJECT_DOMAIN_NAME", file: "auth.project_domain_name" },
  project_domain_id: { env: "OS_PROJECT_DOMAIN_ID", file: "auth.project_domain_id" },
  default_domain: { env: "OS_DEFAULT_DOMAIN", file: "auth.default_domain" },
  application_credential_id: { env: "OS_APPLICATION_CREDENTIAL_ID", file: "auth.application_credential_id" },
  application_credential_name: { env: "OS_APPLICATION_CREDENTIAL_NAME", file: "auth.application_credential_name" },
  application_credential_secret: { env: "OS_APPLICATION_CREDENTIAL_SECRET", file: "auth.application_credential_secret" },
  region_name: { env: "OS_REGION_NAME", file: "region_name" },
  interface: { env: "OS_INTERFACE", file: "interface" },
  cacert: { env: "OS_CACERT", file: "cacert" },
  insecure: { env: "OS_INSECURE", file: "verify" },
};

function fieldName(kind: SourceKind, key: keyof RawAuth): string {
  return kind === "env" ? FIELD_NAMES[key].env : FIELD_NAMES[key].file;
}

/** The clouds.yaml files looked at, in the openstack CLI's order. */
export function cloudsFileCandidates(deps: CredentialSourceDeps = {}): string[] {
  const env = deps.env ?? process.env;
  const cwd = deps.cwd ?? process.cwd();
  const home = deps.homeDir ?? homedir();
  const list: string[] = [];
  if (env.OS_CLIENT_CONFIG_FILE) list.push(env.OS_CLIENT_CONFIG_FILE);
  list.push(path.join(cwd, "clouds.yaml"), path.join(home, ".config", "openstack", "clouds.yaml"), "/etc/openstack/clouds.yaml");
  return list;
}

/**
 * Resolve the credentials for `config`. Precedence: `config.auth`, then `config.cloud`
 * (or `OS_CLOUD`) from clouds.yaml, then the `OS_*` variables. `region_name`, `interface`,
 * `ca_file` and `insecure` in lifeboat's config override what the source says.
 * Throws CredentialsError naming every missing field.
 */
export function resolveCredentials(config: OpenStackConfig, deps: CredentialSourceDeps = {}): ResolvedCredentials {
  const env = deps.env ?? process.env;
  let raw: RawAuth;
  let kind: SourceKind;
  let source: string;
  if (config.auth) {
    kind = "config";
    source = "openstack.auth in lifeboat's config";
    const a = config.auth;
    raw = {
      auth_url: a.auth_url,
      username: a.username,
      user_id: a.user_id,
      password: a.password,
      user_domain_name: a.user_domain_name,
      user_domain_id: a.user_domain_id,
      project_name: a.project_name,
      project_id: a.project_id,
      project_domain_name: a.project_domain_name,
      project_domain_id: a.project_domain_id,
      application_credential_id: a.application_credential_id,
      application_credential_name: a.application_credential_name,
      application_credential_secret: a.application_credential_secret,
    };
  } else if (config.cloud ?? env.OS_CLOUD) {
    const cloudName = (config.cloud ?? env.OS_CLOUD)!;
    kind = "cloud";
    const found = loadCloud(cloudName, config.clouds_file, deps);
    source = `clouds.yaml cloud "${cloudName}" (${found.file})`;
    raw = found.raw;
  } else if (env.OS_AUTH_URL) {
    kind = "env";
    source = "OS_* environment variables";
    raw = rawFromEnv(env);
  } else {
    throw new CredentialsError(
      "no OpenStack credentials: set openstack.auth or openstack.cloud (clouds.yaml) in lifeboat's config, or OS_CLOUD, or OS_AUTH_URL and the other OS_* variables",
    );
  }

  // lifeboat's own settings win over the source's.
  if (config.region_name) raw.region_name = config.region_name;
  if (config.interface) raw.interface = config.interface;
  if (config.ca_file) raw.cacert = config.ca_file;
  if (config.insecure) raw.insecure = true;

  return validate(raw, kind, source);
}

function rawFromEnv(env: NodeJS.ProcessEnv): RawAuth {
  const s = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v === "" ? undefined : v;
  };
  const secretOf = (k: string): Secret | undefined => {
    const v = s(k);
    return v === undefined ? undefined : new Secret(v);
  };
  return {
    auth_url: s("OS_AUTH_URL"),
    auth_type: s("OS_AUTH_TYPE"),
    username: s("OS_USERNAME"),
    user_id: s("OS_USER_ID"),
    password: secretOf("OS_PASSWORD"),
    user_domain_name: s("OS_USER_DOMAIN_NAME"),
    user_domain_id: s("OS_USER_DOMAIN_ID"),
    project_name: s("OS_PROJECT_NAME") ?? s("OS_TENANT_NAME"),
    project_id: s("OS_PROJECT_ID") ?? s("OS_TENANT_ID"),
    project_domain_name: s("OS_PROJECT_DOMAIN_NAME"),
    project_domain_id: s("OS_PROJECT_DOMAIN_ID"),
    default_domain: s("OS_DEFAULT_DOMAIN"),
    application_credential_id: s("OS_APPLICATION_CREDENTIAL_ID"),
    application_credential_name: s("OS_APPLICATION_CREDENTIAL_NAME"),
    application_credential_secret: secretOf("OS_APPLICATION_CREDENTIAL_SECRET"),
    region_name: s("OS_REGION_NAME"),
    interface: s("OS_INTERFACE") ?? s("OS_ENDPOINT_TYPE"),
    cacert: s("OS_CACERT"),
    insecure: /^(1|true|yes)$/i.test(s("OS_INSECURE") ?? ""),
  };
}

type YamlMap = Record<string, unknown>;

function isMap(v: unknown): v is YamlMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readYaml(file: string): YamlMap {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CredentialsError(`cannot read ${file}: ${errorMessage(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new CredentialsError(`${file} is not valid YAML: ${errorMessage(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMap(doc)) throw new CredentialsError(`${file}: expected a mapping with a "clouds" key`);
  return doc;
}

/** Deep merge of plain mappings; `over` wins. */
function merge(base: YamlMap, over: YamlMap): YamlMap {
  const out: YamlMap = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isMap(b) && isMap(v) ? merge(b, v) : v;
  }
  return out;
}

function loadCloud(name: string, explicitFile: string | undefined, deps: CredentialSourceDeps): { file: string; raw: RawAuth } {
  const env = deps.env ?? process.env;
  const candidates = explicitFile ? [explicitFile] : cloudsFileCandidates(deps);
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    throw new CredentialsError(`cloud "${name}" requested but no clouds.yaml found (looked at: ${candidates.join(", ")})`);
  }
  const doc = readYaml(file);
  const clouds = isMap(doc.clouds) ? doc.clouds : {};
  const found = clouds[name];
  if (!isMap(found)) {
    const known = Object.keys(clouds);
    throw new CredentialsError(
      `cloud "${name}" not found in ${file} (clouds there: ${known.length > 0 ? known.join(", ") : "none"})`,
    );
  }
  let cloud: YamlMap = found;
  // secure.yaml beside clouds.yaml (or OS_CLIENT_SECURE_FILE) holds the secrets of the same clouds.
  const secureFile = env.OS_CLIENT_SECURE_FILE ?? path.join(path.dirname(file), "secure.yaml");
  if (existsSync(secureFile)) {
    const secure = readYaml(secureFile);
    const secureCloud = isMap(secure.clouds) ? secure.clouds[name] : undefined;
    if (isMap(secureCloud)) cloud = merge(cloud, secureCloud);
  }
  return { file, raw: rawFromCloud(cloud) };
}

function rawFromCloud(cloud: YamlMap): RawAuth {
  const auth = isMap(cloud.auth) ? cloud.auth : {};
  const str = (m: YamlMap, k: string): string | undefined => {
    const v = m[k];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new CredentialsError(`${k} must be a string`);
  };
  const secretOf = (m: YamlMap, k: string): Secret | undefined => {
    const v = str(m, k);
    return v === undefined ? undefined : new Secret(v);
  };
  const verify = cloud.verify;
  return {
    auth_url: str(auth, "auth_url"),
    auth_type: str(cloud, "auth_type"),
    username: str(auth, "username") ?? str(auth, "user_name"),
    user_id: str(auth, "user_id"),
    password: secretOf(auth, "password"),
    user_domain_name: str(auth, "user_domain_name"),
    user_domain_id: str(auth, "user_domain_id"),
    project_name: str(auth, "project_name") ?? str(auth, "tenant_name"),
    project_id: str(auth, "project_id") ?? str(auth, "tenant_id"),
    project_domain_name: str(auth, "project_domain_name"),
    project_domain_id: str(auth, "project_domain_id"),
    default_domain: str(auth, "default_domain") ?? str(auth, "domain_name"),
    application_credential_id: str(auth, "application_credential_id"),
    application_credential_name: str(auth, "application_credential_name"),
    application_credential_secret: secretOf(auth, "application_credential_secret"),
    region_name: str(cloud, "region_name"),
    interface: str(cloud, "interface") ?? str(cloud, "endpoint_type"),
    cacert: str(cloud, "cacert"),
    insecure: verify === false || verify === "false" || verify === "False",
  };
}

/** `http://k:5000` and `http://k:5000/v3/` both become `http://k:5000/v3`. */
export function normaliseAuthUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  if (/\/v2\.0$/.test(trimmed)) {
    throw new CredentialsError(`auth_url ${url} points at Keystone v2.0, which lifeboat does not support: use the v3 URL`);
  }
  return /\/v3$/.test(trimmed) ? trimmed : `${trimmed}/v3`;
}

function authMethodOf(raw: RawAuth, kind: SourceKind): AuthMethod {
  if (raw.auth_type) {
    const t = raw.auth_type.toLowerCase().replace(/^v3/, "").replace(/[^a-z]/g, "");
    if (t === "password") return "password";
    if (t === "applicationcredential") return "application_credential";
    throw new CredentialsError(
      `${fieldName(kind, "auth_type")} "${raw.auth_type}" is not supported: use password (v3password) or v3applicationcredential`,
    );
  }
  const hasAppCred = raw.application_credential_secret || raw.application_credential_id || raw.application_credential_name;
  return hasAppCred ? "application_credential" : "password";
}

const INTERFACES: readonly EndpointInterface[] = ["public", "internal", "admin"];

function validate(raw: RawAuth, kind: SourceKind, source: string): ResolvedCredentials {
  const missing: string[] = [];
  const n = (k: keyof RawAuth): string => fieldName(kind, k);
  if (!raw.auth_url) missing.push(n("auth_url"));
  const method = authMethodOf(raw, kind);
  const userDomainName = raw.user_domain_name ?? (raw.user_domain_id ? undefined : raw.default_domain);
  const projectDomainName = raw.project_domain_name ?? (raw.project_domain_id ? undefined : raw.default_domain);

  if (method === "password") {
    if (!raw.password) missing.push(n("password"));
    if (!raw.username && !raw.user_id) missing.push(`${n("username")} or ${n("user_id")}`);
    if (raw.username && !raw.user_id && !userDomainName && !raw.user_domain_id) {
      missing.push(`${n("user_domain_name")} or ${n("user_domain_id")} (a user given by name needs its domain)`);
    }
    if (!raw.project_name && !raw.project_id) missing.push(`${n("project_name")} or ${n("project_id")}`);
    if (raw.project_name && !raw.project_id && !projectDomainName && !raw.project_domain_id) {
      missing.push(`${n("project_domain_name")} or ${n("project_domain_id")} (a project given by name needs its domain)`);
    }
  } else {
    if (!raw.application_credential_secret) missing.push(n("application_credential_secret"));
    if (!raw.application_credential_id) {
      if (!raw.application_credential_name) {
        missing.push(`${n("application_credential_id")} or ${n("application_credential_name")}`);
      } else if (!raw.user_id && !raw.username) {
        missing.push(`${n("user_id")} or ${n("username")} (an application credential given by name needs its user)`);
      } else if (!raw.user_id && !userDomainName && !raw.user_domain_id) {
        missing.push(`${n("user_domain_name")} or ${n("user_domain_id")}`);
      }
    }
  }
  if (missing.length > 0) {
    throw new CredentialsError(`OpenStack credentials from ${source} are incomplete (${method} auth): missing ${missing.join("; ")}`);
  }
  let iface: EndpointInterface | undefined;
  if (raw.interface) {
    const i = raw.interface.toLowerCase().replace(/url$/, "");
    if (!(INTERFACES as readonly string[]).includes(i)) {
      throw new CredentialsError(`${n("interface")} "${raw.interface}" is not one of public, internal, admin`);
    }
    iface = i as EndpointInterface;
  }
  const out: ResolvedCredentials = { source, authUrl: normaliseAuthUrl(raw.auth_url!), method };
  if (method === "password") {
    Object.assign(out, {
      username: raw.user_id ? undefined : raw.username,
      userId: raw.user_id,
      userDomainName: raw.user_id || raw.user_domain_id ? undefined : userDomainName,
      userDomainId: raw.user_id ? undefined : raw.user_domain_id,
      password: raw.password,
      projectName: raw.project_id ? undefined : raw.project_name,
      projectId: raw.project_id,
      projectDomainName: raw.project_id || raw.project_domain_id ? undefined : projectDomainName,
      projectDomainId: raw.project_id ? undefined : raw.project_domain_id,
    });
  } else {
    Object.assign(out, {
      applicationCredentialId: raw.application_credential_id,
      applicationCredentialName: raw.application_credential_id ? undefined : raw.application_credential_name,
      applicationCredentialSecret: raw.application_credential_secret,
      userId: raw.application_credential_id ? undefined : raw.user_id,
      username: raw.application_credential_id || raw.user_id ? undefined : raw.username,
      userDomainName: raw.application_credential_id || raw.user_id || raw.user_domain_id ? undefined : userDomainName,
      userDomainId: raw.application_credential_id || raw.user_id ? undefined : raw.user_domain_id,
    });
  }
  if (raw.region_name) out.regionName = raw.region_name;
  if (iface) out.interface = iface;
  if (raw.cacert) out.caFile = raw.cacert;
  if (raw.insecure) out.insecure = true;
  // Drop keys left undefined by the assignments above, so the object prints cleanly.
  for (const k of Object.keys(out) as (keyof ResolvedCredentials)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** The Keystone v3 `auth` body for these credentials (secrets revealed: never log it). */
export function keystoneAuthBody(c: ResolvedCredentials): unknown {
  if (c.method === "application_credential") {
    const ac: Record<string, unknown> = { secret: c.applicationCredentialSecret!.reveal() };
    if (c.applicationCredentialId) ac.id = c.applicationCredentialId;
    else {
      ac.name = c.applicationCredentialName;
      ac.user = c.userId
        ? { id: c.userId }
        : { name: c.username, domain: c.userDomainId ? { id: c.userDomainId } : { name: c.userDomainName } };
    }
    // No `scope`: Keystone takes it from the application credential.
    return { auth: { identity: { methods: ["application_credential"], application_credential: ac } } };
  }
  const user = c.userId
    ? { id: c.userId, password: c.password!.reveal() }
    : {
        name: c.username,
        domain: c.userDomainId ? { id: c.userDomainId } : { name: c.userDomainName },
        password: c.password!.reveal(),
      };
  const project = c.projectId
    ? { id: c.projectId }
    : { name: c.projectName, domain: c.projectDomainId ? { id: c.projectDomainId } : { name: c.projectDomainName } };
  return { auth: { identity: { methods: ["password"], password: { user } }, scope: { project } } };
}

/** One line for logs: who authenticates, never with what secret. */
export function describeCredentials(c: ResolvedCredentials): string {
  const who =
    c.method === "application_credential"
      ? `application credential ${c.applicationCredentialId ?? `${c.applicationCredentialName} of user ${c.userId ?? c.username}`}`
      : `user ${c.userId ?? `${c.username}@${c.userDomainId ?? c.userDomainName}`} in project ${
          c.projectId ?? `${c.projectName}@${c.projectDomainId ?? c.projectDomainName}`
        }`;
  return `${who} at ${c.authUrl} (from ${c.source})`;
}
