import { describe, expect, it } from "vitest";
import { loadFixture, shapeDiff, shapeOf } from "./support/fixtures.js";

/** The comparator the fixture tests rely on must notice what differs. */
describe("shape comparison", () => {
  const real = loadFixture("nova-service-force-down-2.53").response.body as { service: Record<string, unknown> };

  it("accepts the same keys and types with other values", () => {
    const other = { service: { ...real.service, id: "another-uuid", updated_at: "2030-01-01T00:00:00.000000" } };
    expect(shapeDiff(shapeOf(other), shapeOf(real))).toEqual([]);
  });

  it("reports a missing key, an extra key and a changed type", () => {
    const { forced_down: _gone, ...rest } = real.service;
    expect(shapeDiff(shapeOf({ service: rest }), shapeOf(real))).toEqual(["$.service.forced_down: missing"]);
    expect(shapeDiff(shapeOf({ service: { ...real.service, extra: 1 } }), shapeOf(real))).toEqual(["$.service.extra: not in the real answer"]);
    expect(shapeDiff(shapeOf({ service: { ...real.service, id: 7 } }), shapeOf(real))).toEqual(['$.service.id: "number" where the real cloud has "string"']);
  });

  it("merges list elements: a key only some servers have still counts", () => {
    const page = loadFixture("nova-servers-on-host-2.53-page2").response.body as { servers: Record<string, unknown>[] };
    const withoutProgress = { ...page, servers: page.servers.map(({ progress: _p, ...s }) => s) };
    expect(shapeDiff(shapeOf(withoutProgress), shapeOf(page))).toEqual(["$.servers[].progress: missing"]);
  });
});
