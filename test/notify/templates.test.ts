import { describe, expect, it } from "vitest";
import { escapeHtml, oneLine, renderJsonBody, renderMessage, type StormView } from "../../src/notify/templates.js";

function stormView(over: Partial<StormView> = {}): StormView {
  return {
    kind: "storm",
    prefix: "",
    dryRun: false,
    links: [{ label: "Dashboard", url: "https://grafana.example/d/lifeboat" }],
    at: "2026-03-01T10:00:00.000Z",
    reason: "3 hosts failed within 10 minutes (limit 2)",
    hosts: ["compute-1", "compute-2", "compute-<b>3</b>"],
    hostCount: 3,
    hostList: "compute-1, compute-2, compute-<b>3</b>",
    ...over,
  };
}

describe("templates", () => {
  it("escapes every HTML-significant character", () => {
    expect(escapeHtml(`<script>alert("x" + 'y')</script>&=\``)).toBe(
      "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;)&lt;&#x2F;script&gt;&amp;&#x3D;&#x60;",
    );
  });

  it("renders HTML escaped and text as is, and lists every held host", () => {
    const m = renderMessage("storm", stormView());
    expect(m.subject).toBe("[lifeboat] storm guard tripped: 3 host(s) held");
    expect(m.text).toContain("  - compute-<b>3</b>\n");
    expect(m.text).toContain("3 hosts failed within 10 minutes (limit 2)");
    expect(m.html).toContain("<li>compute-&lt;b&gt;3&lt;&#x2F;b&gt;</li>");
    expect(m.html).not.toContain("<b>3</b>");
    expect(m.html).toContain('<a href="https:&#x2F;&#x2F;grafana.example&#x2F;d&#x2F;lifeboat">Dashboard</a>');
  });

  it("keeps subjects on one line whatever the values hold", () => {
    const m = renderMessage("storm", stormView({ hostCount: 2, prefix: "[DRY RUN] " }), {
      storm: { subject: "{{prefix}}storm {{reason}}" },
    });
    const injected = renderMessage("storm", stormView({ reason: "x\r\nBcc: victim@example.org" }), { storm: { subject: "storm {{reason}}" } });
    expect(m.subject).toBe("[DRY RUN] storm 3 hosts failed within 10 minutes (limit 2)");
    expect(injected.subject).toBe("storm x Bcc: victim@example.org");
    expect(oneLine("a\u2028b\tc")).toBe("a b c");
  });

  it("applies per-kind overrides part by part, and html: '' sends text only", () => {
    const m = renderMessage("storm", stormView(), { storm: { text: "held: {{hostList}}", html: "" } });
    expect(m.text).toBe("held: compute-1, compute-2, compute-<b>3</b>\n");
    expect(m.html).toBeUndefined();
    expect(m.subject).toContain("storm guard tripped");
  });

  it("JSON-escapes values in webhook body templates", () => {
    const body = renderJsonBody('{"text": "{{reason}}", "hosts": [{{#hosts}}"{{.}}",{{/hosts}}"end"]}', stormView({ reason: 'a "quoted"\nline' }));
    expect(body).toEqual({ text: 'a "quoted"\nline', hosts: ["compute-1", "compute-2", "compute-<b>3</b>", "end"] });
    expect(() => renderJsonBody('{"text": {{reason}}}', stormView())).toThrow(/did not render to JSON/);
  });
});
