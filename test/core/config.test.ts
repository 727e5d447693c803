import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { Secret } from "../../src/util/secret.js";
import { tempDir } from "../support/lifeboat.js";

const MINIMAL = `
server:
  auth: {bearer_token: webhook-token}
  admin_token: admin-token
`;

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const r = parseConfig(yaml, env);
  if (r.ok) return [];
  return r.problems.map((p) => `${p.path}: ${p.message}`);
}

describe("configuration", () => {
  it("a minimal config gets every default", () => {
    const r = parseConfig(MINIMAL, {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.server.listen).toBe("127.0.0.1:9095");
    expect(r.config.alerts).toMatchObject({ host_label: "host", trigger_alertnames: ["ComputeNodeDown"] });
    expect(r.config.recovery.grace_seconds).toBe(30);
    expect(r.config.evacuation.concurrency).toBe(8);
    expect(r.config.gates.confirmations.map((c) => c.driver)).toEqual(["nova-service", "bmc"]);
    expect(r.config.server.admin_token).toBeInstanceOf(Secret);
    expect(JSON.stringify(r.config)).not.toContain("admin-token");
  });

  it("interpolates ${VAR} and ${VAR:-default}, typed when the whole value is a reference", () => {
    const r = parseConfig(
      `
server:
  listen: \${LISTEN:-0.0.0.0:9095}
  auth: {bearer_token: "\${HOOK}"}
  admin_token: "prefix-\${ADMIN}"
store: {path: "\${LIFEBOAT_STATE_DIR:-./var}/lifeboat.db"}
recovery: {grace_seconds: "\${GRACE}", dry_run: "\${DRY}"}
`,
      { HOOK: "h", ADMIN: "a", GRACE: "45", DRY: "true" },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.server.listen).toBe("0.0.0.0:9095");
    expect(r.config.server.admin_token.reveal()).toBe("prefix-a");
    expect(r.config.store).toMatchObject({ driver: "sqlite", path: "./var/lifeboat.db" });
    expect(r.config.recovery).toMatchObject({ grace_seconds: 45, dry_run: true });
  });

  it("reads *_file secrets from files", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "token"), "from-file\n");
    const r = parseConfig(`server:\n  auth: {bearer_token_file: ${join(dir, "token")}}\n  admin_token: x\n`, {});
    expect(r.ok && r.config.server.auth !== "none" && r.config.server.auth.bearer_token?.reveal()).toBe("from-file");
  });

  const bad: [string, string, RegExp][] = [
    ["missing server section", "alerts: {}", /^server: required$/],
    ["missing admin token", "server:\n  auth: none\n", /^server\.admin_token: required$/],
    ["auth neither none nor credentials", "server:\n  auth: {}\n  admin_token: x\n", /^server\.auth: give bearer_token and\/or basic, or write `auth: none`$/],
    ["unknown top-level key", MINIMAL + "fencign: {}\n", /^fencign: unknown key$/],
    ["unknown nested key", MINIMAL + "recovery: {grace: 3}\n", /^recovery\.grace: unknown key$/],
    ["wrong type", MINIMAL + "recovery: {grace_seconds: soon}\n", /^recovery\.grace_seconds: expected number, received string$/],
    ["negative number", MINIMAL + "evacuation: {concurrency: 0}\n", /^evacuation\.concurrency: .*>=\s*1/],
    ["bad listen address", "server:\n  listen: nowhere\n  auth: none\n  admin_token: x\n", /^server\.listen: expected HOST:PORT/],
    ["env var not set", "server:\n  auth: {bearer_token: \"${NOPE}\"}\n  admin_token: x\n", /^server\.auth\.bearer_token: environment variable NOPE is not set$/],
    ["missing secret file", "server:\n  auth: {bearer_token_file: /nonexistent/token}\n  admin_token: x\n", /^server\.auth\.bearer_token_file: cannot read \/nonexistent\/token: ENOENT$/],
    ["secret given twice", "server:\n  auth: {bearer_token: a, bearer_token_file: /x}\n  admin_token: x\n", /^server\.auth\.bearer_token_file: give either bearer_token or bearer_token_file, not both$/],
    ["fencing host without address", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: ipmi, username: admin, password: x}\n", /^fencing\.hosts\.compute-1\.address: required$/],
    ["fencing chain device without driver", MINIMAL + "fencing:\n  hosts:\n    compute-1:\n      devices: [{address: x}]\n", /^fencing\.hosts\.compute-1\.devices\.0\.driver: /],
    ["unknown fencing driver", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: telnet}\n", /^fencing\.hosts\.compute-1\.driver: /],
    ["noop without the unsafe flag", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: noop}\n", /^fencing\.hosts\.compute-1\.driver: the noop driver fences nothing/],
    ["bad host pattern", MINIMAL + "alerts: {host_pattern: '([a-z'}\n", /^alerts\.host_pattern: not a valid regular expression$/],
    ["no trigger alertnames", MINIMAL + "alerts: {trigger_alertnames: []}\n", /^alerts\.trigger_alertnames: /],
    ["unknown confirmation driver", MINIMAL + "gates: {confirmations: [{driver: ping}]}\n", /^gates\.confirmations\.0\.driver: /],
    ["YAML syntax error", "server: [unclosed\n", /^line \d+: /],
    ["not a mapping", "- a\n- b\n", /^\(top level\): expected a mapping/],
  ];

  for (const [name, yaml, expected] of bad) {
    it(`refuses: ${name}`, () => {
      const p = problems(yaml);
      expect(p.length, `${name} should be refused`).toBeGreaterThan(0);
      expect(p.some((x) => expected.test(x)), `${name}: got ${JSON.stringify(p)}`).toBe(true);
    });
  }

  it("reports every problem at once, not the first only", () => {
    const p = problems("server:\n  listen: nowhere\n  auth: {}\nrecovery: {grace_seconds: x, bogus: 1}\n");
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.listen:/),
        expect.stringMatching(/^server\.auth:/),
        expect.stringMatching(/^server\.admin_token: required/),
        expect.stringMatching(/^recovery\.grace_seconds:/),
        "recovery.bogus: unknown key",
      ]),
    );
  });
});
