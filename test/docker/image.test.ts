import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ModifiableInstruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { freePort } from "../support/daemon.js";
import { commands, link, parseDockerfile, replay, under, type ImageConfig, type Stage } from "./dockerfile.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN, lifeboatConfigData } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

/**
 * The container image. There is no container engine here, so the test replays the
 * Dockerfile (parsed, never paraphrased): the build stage compiles the TypeScript, the deps
 * stage installs the production dependencies with the lockfile, the runtime stage's layout
 * is assembled under a directory standing for the image's `/`, and lifeboat is started
 * with the image's ENTRYPOINT + CMD, ENV, WORKDIR and USER (a non-root uid), against the
 * simulated site. Then /healthz, /readyz, the state volume, the HEALTHCHECK command and
 * `doctor` are checked, and SIGTERM stops it.
 */

const ROOT = join(import.meta.dirname, "../..");
const exec = promisify(execFile);
const parsed = parseDockerfile(join(ROOT, "Dockerfile"));
const runtime = parsed.stages.at(-1)!;
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string; dev?: boolean }> };
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
/** The simulated site and what only it needs: a development install has them, the image must not. */
const SIMULATOR_PACKAGES = ["@lifeboat/sandbox", "smtp-server", "mailparser"];

/** A clean environment for npm: none of the npm_config_* of a run started by `npm test`. */
function npmEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...(process.env.npm_config_cache ? { npm_config_cache: process.env.npm_config_cache } : {}) };
}

/**
 * What each RUN of the build stages does here. The build stage's `npm ci` is the
 * repository's own node_modules (installed from the same lockfile); the deps stage's
 * `npm ci --omit=dev` runs for real, with the one native addon (better-sqlite3, compiled
 * by its install script in the image) taken from the repository's identical build instead
 * of compiling it again for minutes on the test machine.
 */
async function runBuildCommand(stage: Stage, argv: string[], cwd: string): Promise<void> {
  const line = argv.join(" ");
  if (argv[0] === "npm" && argv[1] === "ci") {
    if (!argv.includes("--omit=dev")) {
      link(join(ROOT, "node_modules"), join(cwd, "node_modules"));
      return;
    }
    await exec("npm", [...argv.slice(1), "--ignore-scripts", "--no-audit", "--no-fund"], { cwd, env: npmEnv(), timeout: 300_000 });
    const addon = "node_modules/better-sqlite3/build/Release/better_sqlite3.node";
    const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, "node_modules/better-sqlite3/package.json"), "utf8")) as { version: string }).version;
    expect(version(cwd)).toBe(version(ROOT));
    mkdirSync(join(cwd, "node_modules/better-sqlite3/build/Release"), { recursive: true });
    copyFileSync(join(ROOT, addon), join(cwd, addon));
    return;
  }
  if (line === "npm run build:lifeboat") {
    await exec("npm", ["run", "build:lifeboat"], { cwd, env: npmEnv(), timeout: 300_000 });
    return;
  }
  // The image's npm cache, not this machine's: nothing to replay.
  if (line === "npm cache clean --force") return;
  throw new Error(`${stage.name ?? "?"} stage: RUN ${line}: a command this replay does not know`);
}

describe("the Dockerfile, as written", () => {
  it("lints clean (dockerfile-utils: instructions, flags, arguments, duplicates)", () => {
    const problems = validate(parsed.text).map((d) => `line ${d.range.start.line + 1}: ${typeof d.message === "string" ? d.message : d.message.value}`);
    expect(problems).toEqual([]);
  });

  it("is multi-stage: compiled and dependencies built on Debian Node 20, run on the slim Debian Node 20 image", () => {
    expect(parsed.stages.length).toBeGreaterThanOrEqual(2);
    const names = parsed.stages.slice(0, -1).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["build", "deps"]));
    for (const s of parsed.stages.slice(0, -1)) expect(s.image).toMatch(/^node:20-bookworm$/);
    expect(runtime.image).toBe("node:20-bookworm-slim");
    // The Node this test runs is the image's major.
    expect(process.versions.node.split(".")[0]).toBe("20");
    const runtimeText = runtime.instructions.map((i) => `${i.getKeyword()} ${i.getArgumentsContent() ?? ""}`).join("\n");
    expect(runtimeText).not.toMatch(/npm (ci|install)|build-essential|python3|g\+\+/);
  });

  it("runtime stage: non-root numeric USER, EXPOSE 9095, exec-form HEALTHCHECK without curl, entrypoint `lifeboat serve`", () => {
    const keywords = runtime.instructions.map((i) => i.getKeyword());
    const one = (k: string): string => {
      const found = runtime.instructions.filter((i) => i.getKeyword() === k);
      expect(found, k).toHaveLength(1);
      return found[0]!.getArgumentsContent() ?? "";
    };
    expect(one("USER")).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(one("EXPOSE")).toBe("9095");
    expect(one("HEALTHCHECK")).toMatch(/^CMD \["node", "-e", ".*\/healthz|LIFEBOAT_HEALTH_URL/);
    expect(one("HEALTHCHECK")).not.toMatch(/curl|wget/);
    expect(JSON.parse(one("ENTRYPOINT"))).toEqual(["node", "/app/dist/cli.js"]);
    expect(JSON.parse(one("CMD"))).toEqual(["serve", "--config", "/etc/lifeboat/config.yaml"]);
    expect(JSON.parse(one("VOLUME"))).toEqual(["/var/lib/lifeboat"]);
    // USER comes after everything that needs root.
    expect(keywords.lastIndexOf("RUN")).toBeLessThan(keywords.indexOf("USER"));
    // apt: ipmitool, no recommends, lists removed in the same layer.
    const apt = runtime.instructions.filter((i) => i.getKeyword() === "RUN").map((i) => i.getArgumentsContent() ?? "").find((c) => c.includes("apt-get install"));
    expect(apt).toMatch(/apt-get install -y --no-install-recommends ipmitool/);
    expect(apt).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it("no secret in ENV or ARG, and the state directory is the volume", () => {
    const props = runtime.instructions
      .filter((i) => i.getKeyword() === "ENV" || i.getKeyword() === "ARG")
      .flatMap((i) => (i.getArgumentsContent() ?? "").split(/\s+/).map((kv) => kv.split("=")[0]!));
    expect(props.filter((name) => /pass|secret|token|key|credential/i.test(name))).toEqual([]);
    const env = runtime.instructions.filter((i) => i.getKeyword() === "ENV").map((i) => i.getArgumentsContent() ?? "").join(" ");
    expect(env).toMatch(/LIFEBOAT_STATE_DIR=\/var\/lib\/lifeboat\b/);
  });

  it(".dockerignore keeps dependencies, builds, state, secrets and git out, and lets every COPY source in", () => {
    const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    // .dockerignore's Go filepath.Match patterns, plus `**/`; a pattern also covers what is below it.
    const toRegExp = (p: string): RegExp => {
      const body = p
        .split(/(\*\*\/|\*|\?)/)
        .map((part) => (part === "**/" ? "(?:.*/)?" : part === "*" ? "[^/]*" : part === "?" ? "[^/]" : part.replace(/[.+^$()|[\]\\{}]/g, "\\$&")))
        .join("");
      return new RegExp(`^${body}(?:/.*)?$`);
    };
    const ignored = (path: string): boolean => patterns.some((p) => toRegExp(p).test(path));
    for (const path of ["node_modules", "dist", "var", ".git", "var/lifeboat.db", "lifeboat.db-wal", "run/secrets", ".env"]) expect(ignored(path), path).toBe(true);
    const sources = parsed.stages.flatMap((s) =>
      s.instructions
        .filter((i): i is ModifiableInstruction => i.getKeyword() === "COPY")
        .filter((i) => !i.getFlags().some((f) => f.getName() === "from"))
        .flatMap((i) => i.getArguments().map((a) => a.getValue()).slice(0, -1)),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(ignored(src), src).toBe(false);
    }
  });

  it("RUN lines stay plain && chains the replay understands", () => {
    for (const s of parsed.stages) for (const i of s.instructions.filter((x) => x.getKeyword() === "RUN")) expect(() => commands(i.getArgumentsContent() ?? "")).not.toThrow();
  });
});

describe("the image's runtime, replayed on this machine", () => {
  let image: ImageConfig;
  let sandbox: Sandbox;
  let child: ChildProcess | undefined;
  let port: number;
  let dir: string | undefined;
  const asRoot = process.getuid?.() === 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lifeboat-image-"));
    chmodSync(dir, 0o755);
    [image, sandbox] = await Promise.all([replay(parsed, { context: ROOT, dir, runCommand: runBuildCommand }), startSandbox()]);
    port = await freePort();
  }, 600_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await sandbox?.close();
    // About 100 MB of dependencies: do not leave them behind.
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** An image path on this machine; `node` is this Node. */
  const host = (arg: string): string => (arg === "node" ? process.execPath : arg.startsWith("/") ? under(image.root, arg) : arg);

  /** The container's environment: the image's ENV (paths under its root), HOME of its user, and `docker run -e` values. */
  function containerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const user = image.users.find((u) => u.uid === image.user.uid);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: under(image.root, user?.home ?? "/") };
    for (const [k, v] of Object.entries(image.env)) env[k] = v.startsWith("/") ? under(image.root, v) : v;
    return { ...env, ...extra };
  }

  /** Like `docker run -e`: this test's port, and the tokens the config reads from the environment. */
  const runEnv = (): Record<string, string> => ({
    LIFEBOAT_LISTEN: `127.0.0.1:${port}`,
    LIFEBOAT_HEALTH_URL: `http://127.0.0.1:${port}/healthz`,
    LIFEBOAT_WEBHOOK_TOKEN: WEBHOOK_TOKEN,
    LIFEBOAT_ADMIN_TOKEN: ADMIN_TOKEN,
  });

  const identity = (): { uid?: number; gid?: number } => (asRoot ? { uid: image.user.uid, gid: image.user.gid } : {});

  async function execInImage(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const [cmd, ...args] = argv.map(host);
    try {
      const { stdout, stderr } = await exec(cmd!, args, { cwd: under(image.root, image.workdir), env: containerEnv(runEnv()), timeout: 60_000, ...identity() });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      if (typeof e.code !== "number") throw err;
      return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  }

  it("the layout: production dependencies only, the compiled CLI, package.json (ESM), config and rules", () => {
    const app = under(image.root, image.workdir);
    expect(existsSync(join(app, "dist/cli.js"))).toBe(true);
    // The default notification templates, which the build copies next to the compiled code: serve refuses to start without them.
    expect(existsSync(join(app, "dist/notify/templates/operator-summary.html.mustache"))).toBe(true);
    expect((JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as { type: string }).type).toBe("module");
    expect(existsSync(join(app, "config/example.yaml"))).toBe(true);
    expect(existsSync(join(app, "rules"))).toBe(true);
    expect(existsSync(join(app, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"))).toBe(true);
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev === true);
    expect(devOnly.length).toBeGreaterThan(0);
    for (const name of devOnly) expect(existsSync(join(app, "node_modules", name)), name).toBe(false);
    expect(image.aptPackages).toContain("ipmitool");
    expect(image.user.uid).not.toBe(0);
  });

  it("carries no simulated site: not the sandbox package, not its SMTP server or mail parser, no simulator in dist/", async () => {
    const app = under(image.root, image.workdir);
    for (const name of SIMULATOR_PACKAGES) expect(existsSync(join(app, "node_modules", name)), name).toBe(false);
    expect(existsSync(join(app, "dist/sandbox"))).toBe(false);
    const compiled = readdirSync(join(app, "dist"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"));
    expect(compiled.length).toBeGreaterThan(50);
    expect(compiled.filter((f) => /from\s*["'](smtp-server|mailparser)["']/.test(readFileSync(join(app, "dist", f), "utf8")))).toEqual([]);
    // npm's own view of the image's dependency tree: complete (exit 0) and without them.
    const { stdout } = await exec("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: app, env: npmEnv(), timeout: 60_000 });
    const installed = stdout.split("\n").filter(Boolean);
    expect(installed.length).toBeGreaterThan(20);
    for (const name of SIMULATOR_PACKAGES) expect(installed.filter((p) => p.endsWith(`/node_modules/${name}`)), name).toEqual([]);
  });

  it("`demo` and `sandbox` say in one line how to get the simulated site, and exit 1", async () => {
    for (const command of ["demo", "sandbox"]) {
      const r = await execInImage([...image.entrypoint, command]);
      expect(r.code, command).toBe(1);
      expect(r.stdout, command).toBe("");
      expect(r.stderr.trimEnd().split("\n"), command).toEqual([
        `lifeboat: ${command} needs the simulated site, @lifeboat/sandbox, which a production install leaves out: in a clone of lifeboat's repository run \`npm ci && npm run ${command}\``,
      ]);
    }
  });

  it("runs `serve` with the image's entrypoint as its user: /healthz, /readyz, state in the volume, HEALTHCHECK, doctor, SIGTERM", async () => {
    // The operator's config, mounted where CMD reads it; listen address, state dir and tokens from the environment.
    const configArg = image.cmd[image.cmd.indexOf("--config") + 1]!;
    const data = lifeboatConfigData(
      {
        server: { listen: "${LIFEBOAT_LISTEN}", auth: { bearer_token: "${LIFEBOAT_WEBHOOK_TOKEN}" }, admin_token: "${LIFEBOAT_ADMIN_TOKEN}" },
        store: { path: "${LIFEBOAT_STATE_DIR}/lifeboat.db" },
        gates: { silences: { enabled: false } },
      },
      { site: sandbox, dir: "/unused" },
    );
    writeFileSync(host(configArg), stringify(data), { mode: 0o644 });

    const [cmd, ...args] = [...image.entrypoint, ...image.cmd].map(host);
    const out: string[] = [];
    child = spawn(cmd!, args, { cwd: under(image.root, image.workdir), env: containerEnv(runEnv()), stdio: ["ignore", "pipe", "pipe"], ...identity() });
    child.stdout!.on("data", (b: Buffer) => out.push(b.toString()));
    child.stderr!.on("data", (b: Buffer) => out.push(b.toString()));
    const base = `http://127.0.0.1:${port}`;

    await waitFor(
      async () => {
        if (child?.exitCode !== null) throw new Error(`lifeboat exited ${child?.exitCode}: ${out.join("")}`);
        return (await fetch(`${base}/healthz`).catch(() => null))?.ok;
      },
      60_000,
      "/healthz",
    );
    const ready = await fetch(`${base}/readyz`);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(ready.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe("ready");
    expect(body.checks.store?.ok).toBe(true);
    expect(body.checks.openstack?.ok).toBe(true);

    // The SQLite store lives in the volume (LIFEBOAT_STATE_DIR), written by the image's user.
    const db = join(under(image.root, image.volumes[0]!), "lifeboat.db");
    expect(existsSync(db)).toBe(true);
    if (asRoot) expect(statSync(db).uid).toBe(image.user.uid);

    // The HEALTHCHECK command, exactly as Docker runs it inside the container.
    expect((await execInImage(image.healthcheck.cmd)).code).toBe(0);
    expect(Object.keys(image.healthcheck.flags)).toEqual(expect.arrayContaining(["interval", "timeout"]));

    // `docker exec … lifeboat doctor` against the same site.
    const doctor = await execInImage([...image.entrypoint, "doctor", "--config", configArg]);
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.stdout).toMatch(/^store\s+sqlite \S+lifeboat\.db\s+ok\s+writable/m);

    // docker stop: SIGTERM, a clean exit, and the HEALTHCHECK now fails.
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect((await execInImage(image.healthcheck.cmd)).code).toBe(1);
    expect(out.join("")).not.toContain(WEBHOOK_TOKEN);
  }, 120_000);
});
