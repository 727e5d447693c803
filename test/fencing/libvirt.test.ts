import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { libvirtDeviceSchema } from "../../src/fencing/config.js";
import { LibvirtDevice, domstateToPower } from "../../src/fencing/libvirt.js";
import { silentLogger } from "../../src/logging.js";

// Real virsh against libvirt's test driver (`test:///FILE.xml`), with domains whose initial
// run state is set in the driver's XML (<test:runstate>).
//
// The test driver keeps state only inside one virsh process: a destroy in one process is
// gone in the next. A real hypervisor keeps it, so most tests run virsh through a small
// wrapper that, after a successful destroy/start, writes the new run state back into the
// XML file; virsh itself (parsing, state checks, messages, exit codes) stays the real one.

let dir: string;
let wrapper: string;

// virDomainState numbers accepted by <test:runstate>.
const RUNSTATE = { nostate: 0, running: 1, blocked: 2, paused: 3, shutdown: 4, shutoff: 5, crashed: 6, pmsuspended: 7 } as const;

const WRAPPER = `#!/bin/sh
# usage: virsh -c test://FILE COMMAND DOMAIN
file=\${2#test://}
echo "$3" >> "$file.commands"
/usr/bin/virsh "$@"; rc=$?
if [ "$3" = domstate ] && [ -e "$file.stop-after-domstate" ]; then
  # the domain stops on its own right after we looked at it
  rm -f "$file.stop-after-domstate"
  sed -i "s#<test:runstate>[0-9]*</test:runstate>#<test:runstate>5</test:runstate>#" "$file"
fi
if [ $rc -eq 0 ]; then
  case "$3" in destroy) state=5 ;; start) state=1 ;; *) exit 0 ;; esac
  sed -i "s#<test:runstate>[0-9]*</test:runstate>#<test:runstate>$state</test:runstate>#" "$file"
fi
exit $rc
`;

async function domainFile(name: string, runstate: number): Promise<string> {
  const file = join(dir, `${name}-${Math.random().toString(36).slice(2)}.xml`);
  await writeFile(
    file,
    `<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>${name}</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <test:runstate>${runstate}</test:runstate>
  </domain>
</node>
`,
  );
  await writeFile(`${file}.commands`, "");
  return file;
}

function device(file: string, domain: string, overrides: Record<string, unknown> = {}): LibvirtDevice {
  const config = libvirtDeviceSchema.parse({
    driver: "libvirt",
    uri: `test://${file}`,
    domain,
    virsh_path: wrapper,
    retries: 1,
    retry_delay_seconds: 0.1,
    poll_interval_seconds: 0.1,
    power_timeout_seconds: 1,
    timeout_seconds: 10,
    ...overrides,
  });
  return new LibvirtDevice(config, { logger: silentLogger() });
}

async function commands(file: string): Promise<string[]> {
  return (await readFile(`${file}.commands`, "utf8")).split("\n").filter(Boolean);
}

async function runstate(file: string): Promise<number> {
  const m = /<test:runstate>(\d+)<\/test:runstate>/.exec(await readFile(file, "utf8"));
  return Number(m?.[1]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lifeboat-virsh-"));
  wrapper = join(dir, "virsh");
  await writeFile(wrapper, WRAPPER);
  await chmod(wrapper, 0o755);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("libvirt device against virsh's test driver", () => {
  it("maps every domstate virsh prints", async () => {
    const expected: [number, string, string][] = [
      [RUNSTATE.nostate, "no state", "on"],
      [RUNSTATE.running, "running", "on"],
      [RUNSTATE.blocked, "idle", "on"],
      [RUNSTATE.paused, "paused", "on"],
      [RUNSTATE.shutdown, "in shutdown", "on"],
      [RUNSTATE.shutoff, "shut off", "off"],
      [RUNSTATE.crashed, "crashed", "off"],
      [RUNSTATE.pmsuspended, "pmsuspended", "on"],
    ];
    for (const [state, word, power] of expected) {
      const file = await domainFile("compute-1", state);
      expect(await device(file, "compute-1", { virsh_path: "virsh" }).status()).toEqual({ state: power, raw: `domstate: ${word}` });
    }
    expect(domstateToPower("blocked")).toBe("on");
    expect(domstateToPower("something new")).toBe("unknown");
  });

  it("destroys a running domain and confirms it by domstate", async () => {
    const file = await domainFile("compute-1", RUNSTATE.running);
    const r = await device(file, "compute-1").off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(r.message).toContain("Domain 'compute-1' destroyed");
    expect(r.message).toContain("read back: domstate: shut off (twice, 0.1s apart)");
    expect(await runstate(file)).toBe(RUNSTATE.shutoff);
    // Read at once after the destroy, and once more to confirm: two virsh runs.
    expect(await commands(file)).toEqual(["domstate", "destroy", "domstate", "domstate"]);
  });

  it("does not call a destroy that did not stick a success", async () => {
    // Plain virsh: the test driver forgets the destroy when the process ends, so the
    // domain reads back "running" — exactly the case read-back exists for.
    const file = await domainFile("compute-1", RUNSTATE.running);
    const r = await device(file, "compute-1", { virsh_path: "virsh" }).off();
    expect(r).toMatchObject({ ok: false, state: "on", already: false, attempts: 1 });
    expect(r.message).toContain("Domain 'compute-1' destroyed");
    expect(r.message).toContain("did not read back off within 1s; last status: domstate: running");
  });

  it("treats a shut-off domain as already off without destroying", async () => {
    const file = await domainFile("compute-1", RUNSTATE.shutoff);
    const r = await device(file, "compute-1").off();
    expect(r).toMatchObject({ ok: true, state: "off", already: true, attempts: 0 });
    expect(await commands(file)).toEqual(["domstate", "domstate"]);
  });

  it("re-checks when destroy says the domain is not running", async () => {
    const file = await domainFile("compute-1", RUNSTATE.running);
    await writeFile(`${file}.stop-after-domstate`, "");
    const r = await device(file, "compute-1").off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false });
    expect(r.message).toContain("domain is not running");
    expect(await commands(file)).toEqual(["domstate", "destroy", "domstate", "domstate"]);
  });

  it("starts a shut-off domain", async () => {
    const file = await domainFile("compute-1", RUNSTATE.shutoff);
    const r = await device(file, "compute-1").on();
    expect(r).toMatchObject({ ok: true, state: "on", already: false });
    expect(r.message).toContain("Domain 'compute-1' started");
    expect(await runstate(file)).toBe(RUNSTATE.running);
  });

  it("fails with virsh's words for an unknown domain, without retrying", async () => {
    const file = await domainFile("compute-1", RUNSTATE.running);
    await expect(device(file, "compute-9").status()).rejects.toThrow(/failed to get domain 'compute-9'/);
    await writeFile(`${file}.commands`, "");
    const r = await device(file, "compute-9", { retries: 3 }).off();
    expect(r).toMatchObject({ ok: false, state: "unknown", attempts: 0 });
    expect(r.message).toContain("failed to get domain 'compute-9'");
    expect(await commands(file)).toEqual(["domstate"]);
  });

  it("fails when the hypervisor cannot be reached", async () => {
    const r = await device(join(dir, "missing.xml"), "compute-1", { virsh_path: "virsh", retries: 0 }).off();
    expect(r.ok).toBe(false);
    expect(r.message).toContain("failed to connect to the hypervisor");
  });
});
