import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { MESSAGE_KINDS } from "../../src/notify/config.js";
import { DEFAULT_TEMPLATES, loadTemplates, TEMPLATE_PARTS, templateFileName } from "../../src/notify/default-templates.js";
import { renderMessage } from "../../src/notify/templates.js";
import { VIEW_CASES } from "./support/views.js";
import { removeDir, tempDir } from "../kit/config.js";

/**
 * The default templates are files, src/notify/templates/<kind>.<part>.mustache, shipped as
 * dist/notify/templates/ and read once at start-up; a missing or broken one stops lifeboat
 * with the file's name.
 */

const ROOT = process.cwd();
const SRC = join(ROOT, "src/notify/templates");
const EXPECTED = MESSAGE_KINDS.flatMap((kind) => TEMPLATE_PARTS.map((part) => templateFileName(kind, part))).sort();
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) removeDir(d);
});

function scratch(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

/** A copy of the default templates in a scratch directory, as a directory URL. */
function copyOfDefaults(): { dir: string; url: URL } {
  const dir = join(scratch(), "templates");
  cpSync(SRC, dir, { recursive: true });
  return { dir, url: pathToFileURL(`${dir}/`) };
}

describe("default notification templates", () => {
  it("are one file per kind and part, and nothing else of mustache", () => {
    expect(
      readdirSync(SRC)
        .filter((f) => f.endsWith(".mustache"))
        .sort(),
    ).toEqual(EXPECTED);
  });

  it("are the files' text, less the final line break, for every kind and part", () => {
    for (const kind of MESSAGE_KINDS) {
      for (const part of TEMPLATE_PARTS) {
        const file = readFileSync(join(SRC, templateFileName(kind, part)), "utf8");
        expect(file.endsWith("\n"), `${kind}.${part}`).toBe(true);
        expect(DEFAULT_TEMPLATES[kind][part], `${kind}.${part}`).toBe(file.slice(0, -1));
        expect(DEFAULT_TEMPLATES[kind][part].length, `${kind}.${part}`).toBeGreaterThan(0);
      }
    }
  });

  it("are what renders: an edited copy of the folder, loaded, renders the edit", () => {
    const { dir, url } = copyOfDefaults();
    const html = join(dir, templateFileName("storm", "html"));
    writeFileSync(html, readFileSync(html, "utf8").replace("Storm guard tripped", "Garde-fou déclenché"));
    const loaded = loadTemplates(url);
    const view = VIEW_CASES.find((c) => c.kind === "storm")!.view;
    expect(renderMessage("storm", view, { storm: loaded.storm }).html).toContain("Garde-fou déclenché</h2>");
    expect(renderMessage("storm", view).html).toContain("Storm guard tripped</h2>");
  });

  it("refuse to load when a file is missing or unreadable, naming it", () => {
    const { dir, url } = copyOfDefaults();
    const missing = join(dir, templateFileName("fence-failed", "text"));
    rmSync(missing);
    expect(() => loadTemplates(url)).toThrow(`cannot read the default notification template ${missing} (ENOENT)`);
    // Unreadable: a directory where the file should be (chmod would not stop root).
    writeFileSync(missing, readFileSync(join(SRC, templateFileName("fence-failed", "text"))));
    const unreadable = join(dir, templateFileName("operator-summary", "html"));
    rmSync(unreadable);
    mkdirSync(unreadable);
    expect(() => loadTemplates(url)).toThrow(`cannot read the default notification template ${unreadable} (EISDIR)`);
  });

  it("refuse to load a file that is not a valid mustache template, naming it", () => {
    const { dir, url } = copyOfDefaults();
    const broken = join(dir, templateFileName("tenant", "html"));
    writeFileSync(broken, "<p>{{#instances}}{{name}}</p>\n");
    expect(() => loadTemplates(url)).toThrow(`the default notification template ${broken} is not a valid mustache template: Unclosed section "instances"`);
  });
});

describe("default notification templates, built", () => {
  const DIST = join(ROOT, "dist");

  it("npm run build puts every default template in dist/notify/templates/, as in src", () => {
    const built = join(DIST, "notify/templates");
    expect(existsSync(built), "run `npm run build` first").toBe(true);
    expect(
      readdirSync(built)
        .filter((f) => f.endsWith(".mustache"))
        .sort(),
    ).toEqual(EXPECTED);
    for (const f of EXPECTED) expect(readFileSync(join(built, f), "utf8"), f).toBe(readFileSync(join(SRC, f), "utf8"));
  });

  it("the built lifeboat reads them at start-up, and refuses to start without one, naming it", async () => {
    // A copy of the installed layout (dist/, package.json, node_modules) whose templates can be removed.
    const app = scratch();
    cpSync(DIST, join(app, "dist"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(app, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"), "dir");
    const config = join(app, "bad.yaml");
    writeFileSync(config, "recovery: {grace: 1}\n");
    const serve = async (): Promise<{ code: number; stderr: string }> => {
      try {
        await promisify(execFile)(process.execPath, [join(app, "dist/cli.js"), "serve", "--config", config], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
        return { code: 0, stderr: "" };
      } catch (err) {
        const e = err as { code?: number; stderr?: string };
        return { code: typeof e.code === "number" ? e.code : -1, stderr: e.stderr ?? "" };
      }
    };

    // Templates in place: serve gets as far as reading the config, and refuses that.
    const whole = await serve();
    expect(whole.code).toBe(1);
    expect(whole.stderr).toContain("recovery.grace: unknown key");
    expect(whole.stderr).not.toContain("notification template");

    const missing = join(app, "dist/notify/templates", templateFileName("blocked", "html"));
    rmSync(missing);
    const broken = await serve();
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`lifeboat: refusing to start: cannot read the default notification template ${missing} (ENOENT)`);
    expect(broken.stderr).not.toContain("recovery.grace");
  }, 120_000);
});
