import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/metrics.js";

/** The README is the front door: it must stay true to the code. */
const readme = readFileSync("README.md", "utf8");

describe("README", () => {
  it("opens with the two set-up commands, and CI runs exactly the test one", () => {
    const quick = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("## How it works"));
    expect(quick).toContain("npm ci && npm run demo");
    expect(quick).toContain("./scripts/test.sh");
    expect(readFileSync(".ci/run", "utf8")).toMatch(/exec \.\/scripts\/test\.sh\s*$/);
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.demo).toContain("demo");
    expect(readFileSync("scripts/test.sh", "utf8")).toContain("npm test");
  });

  it("documents every metric lifeboat exports", async () => {
    const metrics = new Metrics({ version: "test", defaultMetrics: false });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.length).toBeGreaterThan(10);
    const missing = names.filter((n) => !readme.includes(`\`${n}\``));
    expect(missing).toEqual([]);
  });

  it("links only to files that exist", () => {
    const links = [...readme.matchAll(/\]\(((?!https?:|#)[^)]+)\)/g)].map((m) => m[1]!.split("#")[0]!);
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((l) => !existsSync(l))).toEqual([]);
  });

  it("lists the CLI commands that exist", () => {
    const cli = readFileSync("src/cli.ts", "utf8");
    const commands = [...readme.matchAll(/^\| `lifeboat ([a-z-]+)/gm)].map((m) => m[1]!);
    expect(commands.length).toBeGreaterThan(10);
    for (const c of commands) expect(cli, c).toMatch(new RegExp(`\\.command\\("${c}"\\)`));
  });

  it("gives the systemd unit the node flags the container image runs with", () => {
    const image = /^ENV NODE_OPTIONS="([^"]+)"/m.exec(readFileSync("Dockerfile", "utf8"))?.[1];
    const unit = /^Environment="NODE_OPTIONS=([^"]+)"/m.exec(readme)?.[1];
    expect(image).toBeDefined();
    expect(unit).toBe(image);
  });
});
