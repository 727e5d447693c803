import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { Secret } from "../../src/util/secret.js";
import { tempDir } from "../kit/config.js";

const MINIMAL = `
server:
  auth: {bearer_token: webhook-token-0123456789}
  admin_token: admin-token-0123456789
`;
/** A valid admin token, for the cases about something else. */
const ADMIN = "admin-token-0123456789";

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
    expect(JSON.stringify(r.config)).not.toContain("webhook-token");
  });

  it("interpolates ${VAR} and ${VAR:-default}, typed when the whole value is a reference", () => {
    const r = parseConfig(
      `
server:
  listen: \${LISTEN:-0.0.0.0:9095}
  auth: {bearer_token: "\${HOOK}"}
  admin_token: "prefix-0123456789-\${ADMIN}"
store: {path: "\${LIFEBOAT_STATE_DIR:-./var}/lifeboat.db"}
recovery: {grace_seconds: "\${GRACE}", dry_run: "\${DRY}"}
`,
      { HOOK: "hook-0123456789abcdef", ADMIN: "a", GRACE: "45", DRY: "true" },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.server.listen).toBe("0.0.0.0:9095");
    expect(r.config.server.admin_token.reveal()).toBe("prefix-0123456789-a");
    expect(r.config.store).toMatchObject({ driver: "sqlite", path: "./var/lifeboat.db" });
    expect(r.config.recovery).toMatchObject({ grace_seconds: 45, dry_run: true });
  });

  it("tells an empty ${VAR} from an unset one", () => {
    const yaml = 'server:\n  auth: {bearer_token: "${HOOK}"}\n  admin_token: "admin-${SUFFIX}-${OTHER}"\n';
    expect(problems(yaml, { HOOK: "", SUFFIX: "" })).toEqual([
      "server.auth.bearer_token: environment variable HOOK is set but empty",
      "server.admin_token: environment variable OTHER is not set; environment variable SUFFIX is set but empty",
    ]);
    // ${VAR:-default} takes the default for an empty variable too, as the shell does.
    expect(problems('server:\n  auth: {bearer_token: "${HOOK:-hook-0123456789abcdef}"}\n  admin_token: ' + ADMIN + "\n", { HOOK: "" })).toEqual([]);
  });

  it("reads *_file secrets from files", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "token"), "from-file-0123456789\n");
    const r = parseConfig(`server:\n  auth: {bearer_token_file: ${join(dir, "token")}}\n  admin_token: ${ADMIN}\n`, {});
    expect(r.ok && r.config.server.auth !== "none" && r.config.server.auth.bearer_token?.reveal()).toBe("from-file-0123456789");
  });

  const bad: [string, string, RegExp][] = [
    ["missing server section", "alerts: {}", /^server: required$/],
    ["missing admin token", "server:\n  auth: none\n", /^server\.admin_token: required$/],
    ["auth neither none nor credentials", "server:\n  auth: {}\n  admin_token: " + ADMIN + "\n", /^server\.auth: give bearer_token and\/or basic, or write `auth: none`$/],
    ["unknown top-level key", MINIMAL + "fencign: {}\n", /^fencign: unknown key$/],
    ["unknown nested key", MINIMAL + "recovery: {grace: 3}\n", /^recovery\.grace: unknown key$/],
    ["wrong type", MINIMAL + "recovery: {grace_seconds: soon}\n", /^recovery\.grace_seconds: expected number, received string$/],
    ["negative number", MINIMAL + "evacuation: {concurrency: 0}\n", /^evacuation\.concurrency: .*>=\s*1/],
    ["bad listen address", "server:\n  listen: nowhere\n  auth: none\n  admin_token: " + ADMIN + "\n", /^server\.listen: expected HOST:PORT/],
    ["env var not set", "server:\n  auth: {bearer_token: \"${NOPE}\"}\n  admin_token: " + ADMIN + "\n", /^server\.auth\.bearer_token: environment variable NOPE is not set$/],
    ["missing secret file", "server:\n  auth: {bearer_token_file: /nonexistent/token}\n  admin_token: " + ADMIN + "\n", /^server\.auth\.bearer_token_file: cannot read \/nonexistent\/token: ENOENT$/],
    ["secret given twice", "server:\n  auth: {bearer_token: a, bearer_token_file: /x}\n  admin_token: " + ADMIN + "\n", /^server\.auth\.bearer_token_file: give either bearer_token or bearer_token_file, not both$/],
    ["fencing host without address", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: ipmi, username: admin, password: x}\n", /^fencing\.hosts\.compute-1\.address: required$/],
    ["fencing chain device without driver", MINIMAL + "fencing:\n  hosts:\n    compute-1:\n      devices: [{address: x}]\n", /^fencing\.hosts\.compute-1\.devices\.0\.driver: /],
    ["unknown fencing driver", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: telnet}\n", /^fencing\.hosts\.compute-1\.driver: /],
    ["noop without the unsafe flag", MINIMAL + "fencing:\n  hosts:\n    compute-1: {driver: noop}\n", /^fencing\.hosts\.compute-1\.driver: the noop driver fences nothing/],
    ["bad host pattern", MINIMAL + "alerts: {host_pattern: '([a-z'}\n", /^alerts\.host_pattern: not a valid regular expression$/],
    ["no trigger alertnames", MINIMAL + "alerts: {trigger_alertnames: []}\n", /^alerts\.trigger_alertnames: /],
    ["unknown confirmation driver", MINIMAL + "gates: {confirmations: [{driver: ping}]}\n", /^gates\.confirmations\.0\.driver: /],
    ["the evacuation driver `simulated` (gone: nothing used it; the simulated site is a cloud for the nova driver)", MINIMAL + "evacuation: {driver: simulated}\n", /^evacuation\.driver: /],
    ["listen port out of range (serve would die on it)", "server:\n  listen: 127.0.0.1:99999\n  auth: none\n  admin_token: " + ADMIN + "\n", /^server\.listen: port 99999 is out of range \(0–65535; 0: any free port\)$/],
    ["listen port out of range, IPv6", "server:\n  listen: '[::1]:70000'\n  auth: none\n  admin_token: " + ADMIN + "\n", /^server\.listen: port 70000 is out of range/],
    ["admin token equal to the webhook token (Alertmanager's credential would open the control API)", "server:\n  auth: {bearer_token: " + ADMIN + "}\n  admin_token: " + ADMIN + "\n", /^server\.admin_token: must differ from server\.auth\.bearer_token: Alertmanager's credential would open the control API, fence included$/],
    ["admin token equal to the webhook's basic password", "server:\n  auth: {basic: {username: am, password: " + ADMIN + "}}\n  admin_token: " + ADMIN + "\n", /^server\.admin_token: must differ from server\.auth\.basic\.password/],
    ["one-character admin token", "server:\n  auth: none\n  admin_token: x\n", /^server\.admin_token: too short: at least 16 characters/],
    ["one-character webhook token", "server:\n  auth: {bearer_token: x}\n  admin_token: " + ADMIN + "\n", /^server\.auth\.bearer_token: too short: at least 16 characters/],
    ["short webhook basic password", "server:\n  auth: {basic: {username: am, password: pw}}\n  admin_token: " + ADMIN + "\n", /^server\.auth\.basic\.password: too short: at least 16 characters/],
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

  it("accepts the edges: port 65535 and 0 (any free port), a 16-character token", () => {
    for (const listen of ["127.0.0.1:65535", "0.0.0.0:0", "[::1]:9095"]) {
      expect(problems(`server:\n  listen: '${listen}'\n  auth: {bearer_token: webhook-0123456789}\n  admin_token: 0123456789abcdef\n`), listen).toEqual([]);
    }
  });

  it("never echoes a refused token", () => {
    const p = problems("server:\n  auth: {bearer_token: same-secret-0123456789}\n  admin_token: same-secret-0123456789\n").join("\n") + problems("server:\n  auth: none\n  admin_token: tiny-secret\n").join("\n");
    expect(p).toMatch(/admin_token/);
    expect(p).not.toContain("same-secret");
    expect(p).not.toContain("tiny-secret");
  });

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
