import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import Mustache from "mustache";

/** Templates and static files ship next to this module (the build copies assets/ into dist/). */
const ASSETS = new URL("./assets/", import.meta.url);

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** HTML escaping of every value, in text and in (quoted) attributes; `/` and `=` stay readable in URLs. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}
const OPTIONS = { escape: escapeHtml };

const TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
};

export interface Asset {
  body: Buffer;
  type: string;
  /** Content hash: the URL changes with the file, so it may be cached for ever. */
  version: string;
}

/**
 * The console's templates (mustache, HTML-escaped by default; no template uses the
 * unescaped forms) and static files, read once when the console is built.
 */
export class ConsoleRenderer {
  readonly #templates: Record<string, string> = {};
  readonly assets = new Map<string, Asset>();

  constructor() {
    const dir = new URL("./templates/", ASSETS);
    for (const f of readdirSync(dir)) {
      if (f.endsWith(".mustache")) this.#templates[f.slice(0, -".mustache".length)] = readFileSync(new URL(f, dir), "utf8");
    }
    for (const f of readdirSync(ASSETS)) {
      const ext = f.slice(f.lastIndexOf("."));
      const type = TYPES[ext];
      if (!type) continue;
      const body = readFileSync(new URL(f, ASSETS));
      this.assets.set(f, { body, type, version: createHash("sha256").update(body).digest("hex").slice(0, 12) });
    }
  }

  /** `/console/assets/NAME?v=HASH` */
  assetUrl(name: string): string {
    const a = this.assets.get(name);
    if (!a) throw new Error(`no console asset ${name}`);
    return `/console/assets/${name}?v=${a.version}`;
  }

  /** A whole page: the layout around the named page template. */
  page(name: string, view: Record<string, unknown>): string {
    const page = this.template(name);
    return Mustache.render(this.template("layout"), { ...view, css: this.assetUrl("console.css"), js: this.assetUrl("console.js"), icon: this.assetUrl("icon.svg") }, { ...this.#templates, page }, OPTIONS);
  }

  /** One template alone (a live section). */
  fragment(name: string, view: Record<string, unknown>): string {
    return Mustache.render(this.template(name), view, this.#templates, OPTIONS);
  }

  get templateNames(): string[] {
    return Object.keys(this.#templates);
  }

  templateText(name: string): string {
    return this.template(name);
  }

  private template(name: string): string {
    const t = this.#templates[name];
    if (t === undefined) throw new Error(`no console template ${name}`);
    return t;
  }
}
