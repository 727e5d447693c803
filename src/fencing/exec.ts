import { spawn } from "node:child_process";

/**
 * Run a fencing tool (ipmitool, virsh) without a shell, with its own kill deadline: the
 * signal kills the process (SIGKILL: a hung BMC session must not outlive its deadline).
 * Stdin is closed so a tool can never sit waiting for a password prompt.
 */

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class CommandKilled extends Error {
  override name = "CommandKilled";
}

const MAX_OUTPUT = 64 * 1024;

export function runCommand(file: string, args: readonly string[], opts: { env: NodeJS.ProcessEnv; signal: AbortSignal }): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(new CommandKilled(`${file} not started: ${reasonText(opts.signal)}`));
      return;
    }
    const child = spawn(file, args, { env: opts.env, stdio: ["ignore", "pipe", "pipe"], shell: false });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    const onAbort = (): void => {
      child.kill("SIGKILL");
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err) => {
      opts.signal.removeEventListener("abort", onAbort);
      reject(err);
    });
    child.on("close", (code) => {
      opts.signal.removeEventListener("abort", onAbort);
      if (opts.signal.aborted) {
        const said = stderr.trim() ? `; it said: ${oneLine(stderr)}` : "";
        reject(new CommandKilled(`${file} killed: ${reasonText(opts.signal)}${said}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

/** Collapse a tool's multi-line output into one line for messages. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join("; ");
}

function reasonText(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name === "TimeoutError") return "deadline passed";
  return r instanceof Error ? r.message : typeof r === "string" ? r : "aborted";
}
