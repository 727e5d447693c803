import { createLogger, type Logger } from "../../../src/logging.js";
import { openstackSchema, type OpenStackConfig } from "../../../src/openstack/config.js";
import { createKeystoneSession, type KeystoneSession, type KeystoneSessionDeps } from "../../../src/openstack/keystone.js";
import type { SandboxCloud } from "../../../packages/sandbox/src/cloud.js";

/** A logger whose JSON lines are kept, to check what reaches the logs. */
export function capturingLogger(level = "debug"): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } });
  return { logger, lines, text: () => lines.join("") };
}

/** lifeboat's `openstack:` config section for the sandbox admin, with overrides. */
export function configFor(cloud: SandboxCloud, over: Record<string, unknown> = {}): OpenStackConfig {
  return openstackSchema.parse({ auth: { ...cloud.admin }, timeout_seconds: 5, retries: 2, ...over });
}

/** A session on the sandbox: short retry delays, the sandbox clock unless told otherwise. */
export function sessionFor(
  cloud: SandboxCloud,
  over: Record<string, unknown> = {},
  deps: Partial<KeystoneSessionDeps> = {},
): KeystoneSession {
  return createKeystoneSession(configFor(cloud, over), {
    logger: deps.logger ?? createLogger({ level: "silent" }),
    retryBaseMs: 10,
    retryMaxMs: 40,
    clock: cloud.clock,
    env: {},
    ...deps,
  });
}
