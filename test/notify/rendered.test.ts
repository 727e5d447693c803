import { describe, expect, it } from "vitest";
import { MESSAGE_KINDS } from "../../src/notify/config.js";
import { renderMessage } from "../../src/notify/templates.js";
import { VIEW_CASES } from "./support/views.js";

/**
 * What the default templates render, byte for byte, for every kind: each case's subject,
 * text and HTML are compared with the files under rendered/ (written from the templates
 * lifeboat 0.1.0 shipped). A change to a default template shows here; after checking the
 * difference, `npx vitest run -u test/notify/rendered.test.ts` writes the new output.
 */

describe("default templates, rendered", () => {
  it("cover every kind, each with its optional sections present and absent", () => {
    for (const kind of MESSAGE_KINDS) expect(VIEW_CASES.filter((c) => c.kind === kind).length, kind).toBeGreaterThanOrEqual(2);
  });

  for (const c of VIEW_CASES) {
    it(`${c.name}: subject, text and HTML as before`, async () => {
      const m = renderMessage(c.kind, c.view);
      expect(m.html).toBeDefined();
      await expect(m.subject).toMatchFileSnapshot(`rendered/${c.name}.subject.txt`);
      await expect(m.text).toMatchFileSnapshot(`rendered/${c.name}.text.txt`);
      await expect(m.html).toMatchFileSnapshot(`rendered/${c.name}.html`);
    });
  }
});
