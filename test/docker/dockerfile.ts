import { execFile } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { promisify } from "node:util";
import { DockerfileParser, From, JSONInstruction, type Env, type Healthcheck, type Instruction, type ModifiableInstruction } from "dockerfile-ast";

/**
 * The Dockerfile, read with a real Dockerfile parser and replayed on this machine, which has
 * no container engine: each stage gets its own root directory, every absolute path of the
 * image lives under it, COPY copies (from the build context or an earlier stage's root), and
 * RUN does what its commands do to the image's files. A command this replay does not know
 * fails the test: a change to the Dockerfile cannot slip past it unreplayed.
 */

const run = promisify(execFile);

export interface Stage {
  name: string | null;
  /** The base image, with ARG defaults substituted: `node:20-bookworm-slim`. */
  image: string;
  instructions: Instruction[];
}

export interface ImageUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface ImageConfig {
  /** The runtime stage's root on this machine: the image's `/` */
  root: string;
  workdir: string;
  env: Record<string, string>;
  /** USER as written, and the uid/gid it names. */
  user: { spec: string; uid: number; gid: number };
  users: ImageUser[];
  volumes: string[];
  expose: string[];
  healthcheck: { flags: Record<string, string>; cmd: string[] };
  entrypoint: string[];
  cmd: string[];
  aptPackages: string[];
}

export interface ParsedDockerfile {
  text: string;
  args: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(file: string): ParsedDockerfile {
  const text = readFileSync(file, "utf8");
  const df = DockerfileParser.parse(text);
  const args: Record<string, string> = {};
  for (const a of df.getInitialARGs()) Object.assign(args, argDefault(a));
  const stages: Stage[] = [];
  for (const i of df.getInstructions()) {
    if (i instanceof From) {
      stages.push({ name: i.getBuildStage(), image: expand(i.getImage() ?? "", args), instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1]!.instructions.push(i);
    }
  }
  return { text, args, stages };
}

function argDefault(i: Instruction): Record<string, string> {
  const content = i.getArgumentsContent() ?? "";
  const eq = content.indexOf("=");
  if (eq < 0) return { [content.trim()]: "" };
  return { [content.slice(0, eq).trim()]: unquote(content.slice(eq + 1).trim()) };
}

function unquote(v: string): string {
  return /^(["']).*\1$/.test(v) ? v.slice(1, -1) : v;
}

export function expand(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => vars[a ?? b ?? ""] ?? "");
}

/** An image path under a stage's root directory. */
export function under(root: string, imagePath: string): string {
  return join(root, posix.resolve("/", imagePath));
}

export interface ReplayOptions {
  /** The build context (the repository). */
  context: string;
  /** Where every stage gets its root directory. */
  dir: string;
  /** What each RUN command of a build stage does here; throw for the unknown. */
  runCommand(stage: Stage, argv: string[], cwd: string): Promise<void>;
}

/** Replay every stage; returns the last (runtime) stage's configuration. */
export async function replay(parsed: ParsedDockerfile, opts: ReplayOptions): Promise<ImageConfig> {
  const roots = new Map<string, string>();
  let last: ImageConfig | undefined;
  for (const [index, stage] of parsed.stages.entries()) {
    const root = join(opts.dir, stage.name ?? `stage-${index}`);
    mkdirSync(root, { recursive: true });
    chmodSync(root, 0o755);
    last = await replayStage(stage, root, parsed.args, roots, opts, index === parsed.stages.length - 1);
    roots.set(stage.name ?? String(index), root);
  }
  if (!last) throw new Error("the Dockerfile has no stage");
  return last;
}

async function replayStage(stage: Stage, root: string, globalArgs: Record<string, string>, roots: Map<string, string>, opts: ReplayOptions, isRuntime: boolean): Promise<ImageConfig> {
  const args: Record<string, string> = {};
  const cfg: ImageConfig = {
    root,
    workdir: "/",
    env: {},
    user: { spec: "root", uid: 0, gid: 0 },
    users: [],
    volumes: [],
    expose: [],
    healthcheck: { flags: {}, cmd: [] },
    entrypoint: [],
    cmd: [],
    aptPackages: [],
  };
  for (const i of stage.instructions) {
    const keyword = i.getKeyword();
    const content = i.getArgumentsContent() ?? "";
    switch (keyword) {
      case "ARG": {
        const [name, value] = Object.entries(argDefault(i))[0]!;
        args[name] = value !== "" ? value : (globalArgs[name] ?? "");
        break;
      }
      case "WORKDIR":
        cfg.workdir = posix.resolve(cfg.workdir, content.trim());
        mkdirSync(under(root, cfg.workdir), { recursive: true });
        break;
      case "ENV":
        for (const p of (i as Env).getProperties()) cfg.env[p.getName()] = p.getValue() ?? ""; // getValue: the value as Docker sets it, quotes removed
        break;
      case "COPY": {
        const from = (i as ModifiableInstruction).getFlags().find((f) => f.getName() === "from")?.getValue();
        const flags = (i as ModifiableInstruction).getFlags().filter((f) => f.getName() !== "from");
        if (flags.length) throw new Error(`COPY flags this replay does not know: ${flags.map((f) => f.getName()).join(", ")}`);
        const parts = (i as ModifiableInstruction).getArguments().map((a) => a.getValue());
        const rawDest = parts.pop()!;
        const dest = posix.resolve(cfg.workdir, rawDest);
        const intoDir = parts.length > 1 || rawDest.endsWith("/");
        for (const src of parts) {
          const source = from ? under(requireRoot(roots, from), src) : join(opts.context, src);
          if (!existsSync(source)) throw new Error(`COPY ${from ? `--from=${from} ` : ""}${src}: not found`);
          // As Docker does: a directory's contents go to dest; a file goes into dest/ or becomes dest.
          const target = intoDir && !statSync(source).isDirectory() ? join(under(root, dest), posix.basename(src)) : under(root, dest);
          mkdirSync(dirname(target), { recursive: true });
          cpSync(source, target, { recursive: true, dereference: true });
        }
        break;
      }
      case "RUN":
        for (const argv of commands(expand(content, { ...globalArgs, ...args }))) {
          if (isRuntime) await runtimeCommand(argv, cfg);
          else await opts.runCommand(stage, argv, under(root, cfg.workdir));
        }
        break;
      case "USER": {
        const spec = content.trim();
        const [u, g] = spec.split(":");
        const known = cfg.users.find((x) => x.name === u || String(x.uid) === u);
        const uid = /^\d+$/.test(u ?? "") ? Number(u) : (known?.uid ?? NaN);
        const gid = g !== undefined ? (/^\d+$/.test(g) ? Number(g) : (known?.gid ?? NaN)) : (known?.gid ?? uid);
        if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`USER ${spec}: unknown user`);
        cfg.user = { spec, uid, gid };
        break;
      }
      case "VOLUME":
        cfg.volumes.push(...jsonOrWords(i));
        for (const v of cfg.volumes) mkdirSync(under(root, v), { recursive: true });
        break;
      case "EXPOSE":
        cfg.expose.push(...content.trim().split(/\s+/));
        break;
      case "HEALTHCHECK": {
        const h = i as Healthcheck;
        const flags = Object.fromEntries(h.getFlags().map((f) => [f.getName(), f.getValue() ?? ""]));
        const cmd = content.replace(/^CMD\s+/, "");
        cfg.healthcheck = { flags, cmd: cmd.startsWith("[") ? (JSON.parse(cmd) as string[]) : ["/bin/sh", "-c", cmd] };
        break;
      }
      case "ENTRYPOINT":
        cfg.entrypoint = jsonOrWords(i);
        break;
      case "CMD":
        cfg.cmd = jsonOrWords(i);
        break;
      default:
        throw new Error(`${keyword}: an instruction this replay does not know`);
    }
  }
  return cfg;
}

function requireRoot(roots: Map<string, string>, stage: string): string {
  const r = roots.get(stage);
  if (!r) throw new Error(`COPY --from=${stage}: no earlier stage of that name`);
  return r;
}

function jsonOrWords(i: Instruction): string[] {
  if (i instanceof JSONInstruction && i.getJSONStrings().length) return i.getJSONStrings().map((s) => s.getJSONValue());
  throw new Error(`${i.getKeyword()} ${i.getArgumentsContent() ?? ""}: use the exec (JSON) form`);
}

/** A RUN line as its `&&`-chained commands, each split into words (quotes are not replayed). */
export function commands(line: string): string[][] {
  if (/["'`|;<>]|\$\(/.test(line)) throw new Error(`RUN ${line}: quoting, pipes and substitutions are not replayed; keep RUN lines to plain && chains`);
  return line
    .split("&&")
    .map((c) => c.trim().split(/\s+/).filter(Boolean))
    .filter((c) => c.length > 0);
}

/**
 * The runtime stage's RUN commands: packages must be installed here too (this machine is
 * the image's stand-in), users are recorded, directories made and handed over as in the image.
 */
async function runtimeCommand(argv: string[], cfg: ImageConfig): Promise<void> {
  const [cmd, ...rest] = argv;
  const opt = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  switch (cmd) {
    case "apt-get": {
      if (rest[0] === "update") return;
      if (rest[0] !== "install") throw new Error(`apt-get ${rest.join(" ")}: not replayed`);
      const packages = rest.slice(1).filter((w) => !w.startsWith("-"));
      for (const p of packages) {
        const { stdout } = await run("dpkg-query", ["-W", "-f=${Status}", p]).catch(() => ({ stdout: "" }));
        if (!stdout.includes("install ok installed")) throw new Error(`the image installs ${p}; install it here too (apt-get install ${p})`);
      }
      cfg.aptPackages.push(...packages);
      return;
    }
    case "rm":
      if (rest.join(" ") === "-rf /var/lib/apt/lists/*") return;
      throw new Error(`rm ${rest.join(" ")}: not replayed`);
    case "groupadd":
      return;
    case "useradd": {
      const name = rest.at(-1)!;
      cfg.users.push({ name, uid: Number(opt("--uid")), gid: Number(opt("--gid")), home: opt("--home-dir") ?? `/home/${name}` });
      return;
    }
    case "mkdir":
      for (const p of rest.filter((w) => !w.startsWith("-"))) mkdirSync(under(cfg.root, p), { recursive: true, mode: 0o755 });
      return;
    case "chown": {
      const [owner, ...paths] = rest.filter((w) => !w.startsWith("-"));
      const [u, g] = (owner ?? "").split(":");
      const user = cfg.users.find((x) => x.name === u || String(x.uid) === u);
      if (!user) throw new Error(`chown ${owner}: unknown user`);
      const gid = g === undefined || g === user.name ? user.gid : Number(g);
      // Only root can give files away; a non-root run keeps them its own.
      if (process.getuid?.() === 0) for (const p of paths) chownSync(under(cfg.root, p), user.uid, gid);
      return;
    }
    default:
      throw new Error(`${argv.join(" ")}: a command this replay does not know`);
  }
}

/** Symlink a directory (e.g. the repository's node_modules) into a stage. */
export function link(target: string, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path, "dir");
}
