import { describe, expect, expectTypeOf, it } from "vitest";
import type { SandboxOptions, SandboxScenario } from "../../packages/sandbox/src/index.js";
import * as sandboxSource from "../../packages/sandbox/src/index.js";
import { loadSandbox, SANDBOX_PACKAGE, SandboxUnavailableError, type SandboxPackage, type SiteOptions } from "../../src/cli/sandbox-package.js";

/**
 * `demo` and `sandbox` load @lifeboat/sandbox at run time and describe the part of it they
 * use in src/cli/sandbox-package.ts, since lifeboat compiles without the package. Here the
 * package is held to that description (by the type checker) and the loader's answers are
 * checked: the package through its link, a package that is not installed, one that does
 * not load.
 */

describe("the sandbox package as lifeboat's CLI loads it", () => {
  it("offers what demo and sandbox use, under the names they use (checked by the type checker)", () => {
    // Every function and return value, as lifeboat declares them.
    const offered: SandboxPackage<SandboxScenario> = sandboxSource;
    expect(typeof offered.startSandbox).toBe("function");
    // Every option lifeboat passes exists under that name (a renamed optional key would
    // otherwise still type-check).
    expectTypeOf<Exclude<keyof SiteOptions, keyof SandboxOptions>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<keyof NonNullable<SiteOptions["ports"]>, keyof NonNullable<SandboxOptions["ports"]>>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<keyof NonNullable<SiteOptions["cloud"]>, keyof NonNullable<SandboxOptions["cloud"]>>>().toEqualTypeOf<never>();
  });

  it("loads the built package by its name, through the development install's link", async () => {
    const { defaultScenario, startSandbox } = await loadSandbox("demo");
    const scenario = defaultScenario({ hosts: 2, serversPerHost: 1 });
    expect(scenario.servers.map((s) => s.host)).toEqual(["compute-1"]);
    const site = await startSandbox({ cloud: { scenario } });
    try {
      expect(site.view().hosts.map((h) => [h.host, h.power])).toEqual([
        ["compute-1", "On"],
        ["compute-2", "On"],
      ]);
      expect(site.cloud.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/identity\/v3$/);
    } finally {
      await site.close();
    }
  });

  it("a package that is not installed (a production install): one line saying how to get it", async () => {
    const err = await loadSandbox("demo", "@lifeboat/not-installed").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect((err as Error).message).toBe(
      "demo needs the simulated site, @lifeboat/not-installed, which a production install leaves out: in a clone of lifeboat's repository run `npm ci && npm run demo`",
    );
    expect(SANDBOX_PACKAGE).toBe("@lifeboat/sandbox");
  });

  it("a package that is there but does not load (not built): says so, and how to build it", async () => {
    // @types/node has a package.json and nothing to import: as the sandbox before `npm run build`.
    const err = await loadSandbox("sandbox", "@types/node").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect((err as Error).message).toMatch(/^sandbox: the simulated site, @types\/node, is installed but does not load \(.+\): run `npm ci && npm run build`$/);
    expect((err as Error).message).not.toContain("\n");
  });
});
