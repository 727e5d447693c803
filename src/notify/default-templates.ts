import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Mustache from "mustache";
import { errorMessage } from "../util/errors.js";
import { MESSAGE_KINDS, type MessageKind } from "./config.js";
import type { TemplateSet } from "./templates.js";

/**
 * lifeboat's default notification templates: one mustache file per message kind and part,
 * `templates/<kind>.<subject|text|html>.mustache` next to this module (the build copies the
 * folder into dist/notify/), so operators and translators can read and copy them. They are
 * read once, when this module is loaded: a missing, unreadable or malformed default stops
 * lifeboat at start-up, naming the file, instead of failing the first message of an incident.
 */

export const TEMPLATE_PARTS = ["subject", "text", "html"] as const satisfies readonly (keyof TemplateSet)[];
export type TemplatePart = (typeof TEMPLATE_PARTS)[number];

/** Where the defaults ship: src/notify/templates/ under tsx and vitest, dist/notify/templates/ once built. */
export const DEFAULT_TEMPLATES_DIR = new URL("./templates/", import.meta.url);

export function templateFileName(kind: MessageKind, part: TemplatePart): string {
  return `${kind}.${part}.mustache`;
}

/** Every kind's subject, text and HTML from the files in `dir` (a directory URL, ending in "/"). */
export function loadTemplates(dir: URL = DEFAULT_TEMPLATES_DIR): Record<MessageKind, TemplateSet> {
  const read = (kind: MessageKind, part: TemplatePart): string => {
    const file = new URL(templateFileName(kind, part), dir);
    let body: string;
    try {
      body = readFileSync(file, "utf8");
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
      throw new Error(`cannot read the default notification template ${fileURLToPath(file)} (${why}); reinstall lifeboat or restore the file`);
    }
    try {
      Mustache.parse(body);
    } catch (err) {
      throw new Error(`the default notification template ${fileURLToPath(file)} is not a valid mustache template: ${errorMessage(err)}`);
    }
    // A file ends with a line break, which editors add; the template is what comes before it.
    return body.endsWith("\n") ? body.slice(0, -1) : body;
  };
  const sets = MESSAGE_KINDS.map((kind): [MessageKind, TemplateSet] => [kind, { subject: read(kind, "subject"), text: read(kind, "text"), html: read(kind, "html") }]);
  return Object.fromEntries(sets) as Record<MessageKind, TemplateSet>;
}

export const DEFAULT_TEMPLATES: Readonly<Record<MessageKind, TemplateSet>> = loadTemplates();
