import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openstackSchema } from "../../src/openstack/config.js";
import { CredentialsError, keystoneAuthBody, resolveCredentials } from "../../src/openstack/credentials.js";

let dir: string;
let home: string;
let cwd: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "lifeboat-creds-"));
  home = path.join(dir, "home");
  cwd = path.join(dir, "cwd");
  mkdirSync(path.join(home, ".config", "openstack"), { recursive: true });
  mkdirSync(cwd, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (o: Record<string, unknown> = {}) => openstackSchema.parse(o);
const resolve = (o: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => resolveCredentials(cfg(o), { env, cwd, homeDir: home });

const CLOUDS = `
clouds:
  prod:
    auth:
      auth_url: https://keystone.example:5000
      username: ha-agent
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionTwo
    interface: internal
    cacert: /etc/ssl/cloud-ca.pem
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example:5000/v3/
      application_credential_id: 423f19a4
      application_credential_secret: s3cr3t
`;

describe("inline auth", () => {
  it("password auth by names; the body Keystone expects", () => {
    const c = resolve({
      auth: { auth_url: "http://k:5000", username: "ha", password: "pw", user_domain_name: "Default", project_name: "svc", project_domain_name: "Default" },
    });
    expect(c).toMatchObject({ method: "password", authUrl: "http://k:5000/v3", username: "ha", projectName: "svc" });
    expect(String(c.password)).toBe("[redacted]");
    expect(JSON.stringify(c)).not.toContain("pw\"");
    expect(keystoneAuthBody(c)).toEqual({
      auth: {
        identity: { methods: ["password"], password: { user: { name: "ha", domain: { name: "Default" }, password: "pw" } } },
        scope: { project: { name: "svc", domain: { name: "Default" } } },
      },
    });
  });

  it("password auth by ids needs no domains", () => {
    const c = resolve({ auth: { auth_url: "http://k/v3", user_id: "u1", password: "pw", project_id: "p1" } });
    expect(keystoneAuthBody(c)).toEqual({
      auth: { identity: { methods: ["password"], password: { user: { id: "u1", password: "pw" } } }, scope: { project: { id: "p1" } } },
    });
  });

  it("application credential: no scope in the body", () => {
    const c = resolve({ auth: { auth_url: "http://k/v3", application_credential_id: "ac1", application_credential_secret: "s" } });
    expect(c.method).toBe("application_credential");
    expect(keystoneAuthBody(c)).toEqual({ auth: { identity: { methods: ["application_credential"], application_credential: { id: "ac1", secret: "s" } } } });
  });

  it("names every missing field", () => {
    expect(() => resolve({ auth: { auth_url: "http://k", username: "ha" } })).toThrow(
      /missing auth\.password; auth\.user_domain_name or auth\.user_domain_id .*; auth\.project_name or auth\.project_id/,
    );
    expect(() => resolve({ auth: { auth_url: "http://k", application_credential_name: "x", application_credential_secret: "s" } })).toThrow(
      /auth\.user_id or auth\.username \(an application credential given by name needs its user\)/,
    );
  });
});

describe("clouds.yaml", () => {
  it("finds the cloud in ~/.config/openstack with region, interface and CA of the cloud; secure.yaml beside it adds the password", () => {
    writeFileSync(path.join(home, ".config", "openstack", "clouds.yaml"), CLOUDS);
    writeFileSync(path.join(home, ".config", "openstack", "secure.yaml"), "clouds:\n  prod:\n    auth:\n      password: from-secure\n");
    const c = resolve({ cloud: "prod" });
    expect(c).toMatchObject({
      method: "password",
      authUrl: "https://keystone.example:5000/v3",
      username: "ha-agent",
      regionName: "RegionTwo",
      interface: "internal",
      caFile: "/etc/ssl/cloud-ca.pem",
    });
    expect(c.password?.reveal()).toBe("from-secure");
    expect(c.source).toContain(path.join(home, ".config", "openstack", "clouds.yaml"));
  });

  it("search order: OS_CLIENT_CONFIG_FILE, then ./clouds.yaml, then ~/.config/openstack", () => {
    writeFileSync(path.join(home, ".config", "openstack", "clouds.yaml"), CLOUDS.replace("ha-agent", "from-home"));
    writeFileSync(path.join(cwd, "clouds.yaml"), CLOUDS.replace("ha-agent", "from-cwd").replace("project_name: service", "project_name: service\n      password: x"));
    const explicit = path.join(dir, "explicit.yaml");
    writeFileSync(explicit, CLOUDS.replace("ha-agent", "from-env").replace("project_name: service", "project_name: service\n      password: x"));
    expect(resolve({ cloud: "prod" }).username).toBe("from-cwd");
    expect(resolve({ cloud: "prod" }, { OS_CLIENT_CONFIG_FILE: explicit }).username).toBe("from-env");
    rmSync(path.join(cwd, "clouds.yaml"));
    // from-home has no password and no secure.yaml: the error names it.
    expect(() => resolve({ cloud: "prod" })).toThrow(/missing auth\.password/);
  });

  it("OS_CLOUD picks the cloud; an application credential cloud; lifeboat's own settings override the cloud's", () => {
    writeFileSync(path.join(cwd, "clouds.yaml"), CLOUDS);
    const c = resolve({ region_name: "RegionOne", interface: "public" }, { OS_CLOUD: "appcred" });
    expect(c).toMatchObject({ method: "application_credential", applicationCredentialId: "423f19a4", authUrl: "https://keystone.example:5000/v3", regionName: "RegionOne", interface: "public" });
  });

  it("unknown cloud, or none found: clear errors", () => {
    writeFileSync(path.join(cwd, "clouds.yaml"), CLOUDS);
    expect(() => resolve({ cloud: "nope" })).toThrow(/cloud "nope" not found in .*clouds.yaml \(clouds there: prod, appcred\)/);
    rmSync(path.join(cwd, "clouds.yaml"));
    expect(() => resolve({ cloud: "prod", clouds_file: path.join(dir, "missing.yaml") })).toThrow(CredentialsError);
  });
});

describe("OS_* environment", () => {
  it("password variables, with ids and tenant aliases", () => {
    const c = resolve(
      {},
      {
        OS_AUTH_URL: "http://k:5000/v3",
        OS_USER_ID: "u1",
        OS_PASSWORD: "pw",
        OS_TENANT_ID: "p1",
        OS_REGION_NAME: "R",
        OS_INTERFACE: "internalURL",
        OS_CACERT: "/ca.pem",
      },
    );
    expect(c).toMatchObject({ method: "password", userId: "u1", projectId: "p1", regionName: "R", interface: "internal", caFile: "/ca.pem" });
  });

  it("application credential by name + user name and domain; OS_AUTH_TYPE checked", () => {
    const env = {
      OS_AUTH_URL: "http://k",
      OS_AUTH_TYPE: "v3applicationcredential",
      OS_APPLICATION_CREDENTIAL_NAME: "mon",
      OS_APPLICATION_CREDENTIAL_SECRET: "s",
      OS_USERNAME: "ha",
      OS_USER_DOMAIN_NAME: "Default",
    };
    expect(keystoneAuthBody(resolve({}, env))).toEqual({
      auth: {
        identity: { methods: ["application_credential"], application_credential: { name: "mon", secret: "s", user: { name: "ha", domain: { name: "Default" } } } },
      },
    });
    expect(() => resolve({}, { ...env, OS_AUTH_TYPE: "v3token" })).toThrow(/OS_AUTH_TYPE "v3token" is not supported/);
  });

  it("missing variables are named by their OS_ names", () => {
    expect(() => resolve({}, { OS_AUTH_URL: "http://k", OS_USERNAME: "ha", OS_PASSWORD: "pw" })).toThrow(
      /OS_USER_DOMAIN_NAME or OS_USER_DOMAIN_ID .*OS_PROJECT_NAME or OS_PROJECT_ID/,
    );
    expect(() => resolve({}, {})).toThrow(/no OpenStack credentials/);
  });
});
