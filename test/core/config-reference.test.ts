import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configReference } from "../../src/config/reference.js";

describe("configuration reference", () => {
  const generated = configReference();

  it("docs/config-reference.md is the reference generated from the current schema (run `npm run docs`)", () => {
    expect(readFileSync("docs/config-reference.md", "utf8")).toBe(generated);
  });

  it("documents every field", () => {
    const rows = generated.split("\n").filter((l) => l.startsWith("| `"));
    expect(rows.length).toBeGreaterThan(100);
    // The description is the last cell: a row ending in an empty cell documents nothing.
    const undocumented = rows.filter((l) => /\|\s*\|$/.test(l)).map((l) => l.split(" | ")[0]);
    expect(undocumented).toEqual([]);
  });

  it("covers every section and every fencing driver", () => {
    for (const s of ["server", "store", "alerts", "recovery", "gates", "fencing", "openstack", "evacuation", "notifications", "alertmanager", "prometheus", "monitor", "logging"]) {
      expect(generated).toContain(`## \`${s}\``);
    }
    for (const d of ["ipmi", "redfish", "libvirt", "noop"]) expect(generated).toContain(`#### \`driver: ${d}\``);
  });
});
