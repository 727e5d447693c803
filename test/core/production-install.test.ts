import { execFile } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * The simulated site (packages/sandbox, @lifeboat/sandbox) is for development only: a
 * development install (`npm ci`) links it and installs what it needs, a production install
 * (`npm ci --omit=dev`, the container image) has none of it. It is a `file:` dev dependency
 * and not an npm workspace on purpose: npm installs every workspace, and its dependencies,
 * even with --omit=dev.
 */

const ROOT = join(import.meta.dirname, "../..");
const exec = promisify(execFile);
/** The sandbox and what only it needs. */
const SIMULATOR_PACKAGES = ["@lifeboat/sandbox", "smtp-server", "mailparser"];

interface LsNode {
  dependencies?: Record<string, LsNode>;
  resolved?: string;
  missing?: boolean;
  problems?: string[];
}

/** `npm ls --all --json`, flattened to the names it lists; npm's environment from `npm test` left out. */
async function npmLs(...args: string[]): Promise<{ names: Set<string>; tree: LsNode }> {
  const { stdout } = await exec("npm", ["ls", "--all", "--json", ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000, maxBuffer: 32 * 1024 * 1024 });
  const tree = JSON.parse(stdout) as LsNode;
  const names = new Set<string>();
  const walk = (deps: Record<string, LsNode> = {}): void => {
    for (const [name, node] of Object.entries(deps)) {
      names.add(name);
      walk(node.dependencies);
    }
  };
  walk(tree.dependencies);
  return { names, tree };
}

describe("the production install", () => {
  it("`npm ls --omit=dev` lists no simulated site, SMTP server or mail parser", async () => {
    const { names, tree } = await npmLs("--omit=dev");
    expect(tree.problems ?? []).toEqual([]);
    expect(names).toContain("better-sqlite3");
    expect(names).toContain("nodemailer");
    for (const name of SIMULATOR_PACKAGES) expect(names.has(name), name).toBe(false);
  });

  it("the lockfile marks the sandbox and everything only it needs as dev, so `npm ci --omit=dev` leaves them out", () => {
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; link?: boolean; resolved?: string }> };
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; workspaces?: unknown };
    expect(pkg.workspaces).toBeUndefined();
    for (const name of SIMULATOR_PACKAGES) expect(pkg.dependencies[name], name).toBeUndefined();
    // The link in node_modules carries no flag; the package it points to does.
    expect(lock.packages["node_modules/@lifeboat/sandbox"]).toMatchObject({ link: true, resolved: "packages/sandbox" });
    expect(lock.packages["packages/sandbox"]?.dev).toBe(true);
    for (const name of SIMULATOR_PACKAGES.filter((n) => n !== "@lifeboat/sandbox")) expect(lock.packages[`node_modules/${name}`]?.dev, name).toBe(true);
  });

  it("a development install links the sandbox from packages/sandbox, with its own dependencies", async () => {
    const { names } = await npmLs();
    for (const name of SIMULATOR_PACKAGES) expect(names.has(name), name).toBe(true);
    expect(realpathSync(join(ROOT, "node_modules/@lifeboat/sandbox"))).toBe(realpathSync(join(ROOT, "packages/sandbox")));
  });
});
