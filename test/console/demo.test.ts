import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { waitFor } from "../kit/http.js";
import { CLI } from "../kit/served.js";

describe("npm run demo at a terminal", () => {
  it("prints the console's address, keeps it open after the story until Enter, then ends", async () => {
    // script(1) gives the demo a terminal, as a person running `npm run demo` has.
    const child = spawn("script", ["-qfec", `${process.execPath} ${CLI} demo --fast`, "/dev/null"], { env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: "xterm" }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const plain = (): string => out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
      await waitFor(() => /Press Enter or Ctrl-C to end the demo/.test(plain()), 120_000, "the demo to finish its story");
      const url = /the console: (http:\/\/127\.0\.0\.1:\d+\/console)/.exec(plain())![1]!;
      expect(plain()).toMatch(/✔ completed/);
      // Still serving: the login page, and the admin token the demo printed opens it.
      expect((await fetch(`${url}/login`)).status).toBe(200);
      const login = await fetch(`${url}/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=demo-admin-token" });
      expect(login.status).toBe(303);
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const overview = await fetch(url, { headers: { cookie } });
      expect(await overview.text()).toContain("compute-1");
      await new Promise((r) => setTimeout(r, 500));
      expect(child.exitCode).toBeNull();
      child.stdin.write("\r");
      expect(await exited).toBe(0);
      await expect(fetch(`${url}/login`)).rejects.toThrow();
    } finally {
      child.kill("SIGKILL");
    }
  }, 150_000);
});
