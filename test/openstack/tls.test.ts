import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialsError } from "../../src/openstack/credentials.js";
import { OpenStackConnectionError } from "../../src/openstack/errors.js";
import type { KeystoneSession } from "../../src/openstack/keystone.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { sessionFor } from "./support/session.js";

/** The session's TLS settings against the simulated cloud served over HTTPS with a self-signed certificate. */
describe("TLS to the cloud", () => {
  let dir: string;
  let cert: string;
  let cloud: SandboxCloud;
  const sessions: KeystoneSession[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "lifeboat-tls-"));
    cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
      "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    ], { stdio: "ignore" });
    cloud = await startSandboxCloud({ tls: { key: readFileSync(key), cert: readFileSync(cert) } });
  });
  afterAll(async () => {
    sessions.forEach((s) => s.close());
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const services = (s: KeystoneSession) => s.request({ service: "compute", method: "GET", path: "/os-services", microversion: "2.53" });

  it("refuses an unknown certificate by default", async () => {
    expect(cloud.url).toMatch(/^https:/);
    const s = sessionFor(cloud, { retries: 0 });
    sessions.push(s);
    const err = await services(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackConnectionError);
    expect((err as Error).message).toMatch(/self[- ]signed/i);
  });

  it("trusts it through ca_file, or OS_CACERT", async () => {
    const s = sessionFor(cloud, { ca_file: cert });
    sessions.push(s);
    expect((await services(s)).status).toBe(200);
    const a = cloud.admin;
    const env = {
      OS_AUTH_URL: a.auth_url,
      OS_USERNAME: a.username,
      OS_PASSWORD: a.password,
      OS_PROJECT_NAME: a.project_name,
      OS_USER_DOMAIN_NAME: "Default",
      OS_PROJECT_DOMAIN_NAME: "Default",
      OS_CACERT: cert,
    };
    const fromEnv = sessionFor(cloud, { auth: undefined }, { env, cwd: dir, homeDir: dir });
    sessions.push(fromEnv);
    expect((await services(fromEnv)).status).toBe(200);
  });

  it("skips verification when insecure", async () => {
    const s = sessionFor(cloud, { insecure: true });
    sessions.push(s);
    expect((await services(s)).status).toBe(200);
  });

  it("an unreadable CA bundle is a configuration error at start", () => {
    expect(() => sessionFor(cloud, { ca_file: path.join(dir, "missing.pem") })).toThrow(CredentialsError);
  });
});
