/**
 * @lifeboat/sandbox: a simulated OpenStack site on loopback (Keystone, Nova and Placement,
 * one Redfish BMC per compute host, an SMTP catcher, a control API). `lifeboat demo` and
 * `lifeboat sandbox` load this entry point when the package is installed; it knows lifeboat
 * only from the outside (the config sections `Sandbox.config()` returns are plain data).
 */
export { startSandbox, SANDBOX_ADMIN, SANDBOX_BMC, SANDBOX_OPERATORS } from "./environment.js";
export type { Sandbox, SandboxOptions, SiteView } from "./environment.js";
export { defaultScenario, startSandboxCloud, SANDBOX_APP_CREDENTIAL } from "./cloud.js";
export type { FaultHandle, FaultMatch, FaultSpec, GeneratedScenarioOptions, SandboxCloud, SandboxCloudOptions, SandboxCredentials, SandboxScenario, ScenarioHost, ScenarioServer, ScenarioUser } from "./cloud.js";
export { startRedfishSimulator } from "./redfish.js";
export type { RedfishSimulator, RedfishSimulatorOptions, SimPowerState, SimSystem } from "./redfish.js";
export { startSmtpCatcher } from "./smtp.js";
export type { CaughtMessage, SmtpCatcher, SmtpCatcherOptions } from "./smtp.js";
export { rackScenario, racksOf } from "./rack-scenario.js";
export type { RackScenarioOptions } from "./rack-scenario.js";
export { EvacuationWatch } from "./evacuation-watch.js";
export type { EvacuationCount, EvacuationWatchView } from "./evacuation-watch.js";
