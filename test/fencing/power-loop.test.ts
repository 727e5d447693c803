import { describe, expect, it } from "vitest";
import { ScriptedPowerDevice } from "./support/memory-device.js";

// The power loop every driver shares, through a device whose status reads are scripted.
// (The same rules against the real things: ipmi.test.ts, redfish.test.ts, libvirt.test.ts.)

describe("power loop: the wanted state is believed only when two reads in a row say it", () => {
  it("reads at once after the command and confirms with a second read", async () => {
    const d = new ScriptedPowerDevice({ power: "on" });
    const r = await d.off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(d.log).toEqual(["read on", "off", "read off", "read off"]);
  });

  it("keeps polling after an 'off' the next read contradicts, and confirms two later agreeing reads", async () => {
    // The BMC's first answers after the command are wrong (off, then on twice); then it tells the truth.
    const d = new ScriptedPowerDevice({ power: "on", answers: ["on", "off", "on", "on"] });
    const r = await d.off();
    expect(r).toMatchObject({ ok: true, state: "off" });
    expect(d.log).toEqual(["read on", "off", "read off", "read on", "read on", "read off", "read off"]);
  });

  it("fails, naming the unconfirmed read, when the 'off' is never repeated", async () => {
    const d = new ScriptedPowerDevice({ power: "on", answers: ["on", "off"] });
    d.stuck = true;
    const r = await d.off();
    expect(r).toMatchObject({ ok: false, state: "on", already: false, attempts: 1 });
    expect(r.message).toBe(
      "sent off (off accepted) but the device did not read back off within 0.5s; last status: power is on; it read off once, but the next read said: power is on",
    );
    expect(d.log.filter((x) => x === "read off")).toHaveLength(1);
  });

  it("does not count a failed read as the second one", async () => {
    const d = new ScriptedPowerDevice({ power: "on", answers: ["on", "off", "error", "off", "off"] });
    const r = await d.off();
    expect(r).toMatchObject({ ok: true, state: "off" });
    expect(d.log).toEqual(["read on", "off", "read off", "read error", "read off", "read off"]);
  });

  it("sends nothing when two reads before the command agree, and sends when the second contradicts the first", async () => {
    const already = new ScriptedPowerDevice({ power: "off" });
    expect(await already.off()).toMatchObject({ ok: true, state: "off", already: true, attempts: 0 });
    expect(already.log).toEqual(["read off", "read off"]);

    const flip = new ScriptedPowerDevice({ power: "on", answers: ["off"] });
    expect(await flip.off()).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(flip.log).toEqual(["read off", "read on", "off", "read off", "read off"]);
  });

  it("applies the same rule to power on", async () => {
    const d = new ScriptedPowerDevice({ power: "off" });
    expect(await d.on()).toMatchObject({ ok: true, state: "on", attempts: 1 });
    expect(d.log).toEqual(["read off", "on", "read on", "read on"]);
  });

  it("leaves the status query to one read", async () => {
    const d = new ScriptedPowerDevice({ power: "off" });
    expect(await d.status()).toEqual({ state: "off", raw: "power is off" });
    expect(d.log).toEqual(["read off"]);
  });
});
