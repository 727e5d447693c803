import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import axios, { type AxiosInstance, type AxiosResponse, type Method } from "axios";
import type { Logger } from "../logging.js";
import { errorMessage } from "../util/errors.js";
import type { RedfishDeviceConfig } from "./config.js";
import { DeviceError, PowerLoopDevice, type PowerTarget } from "./power-loop.js";
import type { PowerState, PowerStatus } from "../domain/ports/fencing.js";

/**
 * Redfish fencing (DMTF DSP0266, ComputerSystem.Reset): find the ComputerSystem, read its
 * Reset action's target and allowed ResetTypes from the resource itself (never a
 * hard-coded URI), POST `ForceOff`, then poll `PowerState` until `Off`.
 *
 * Which ResetType fences: only `ForceOff`. It is the one value the schema defines as
 * "turn off the unit immediately (non-graceful)". The others may not remove power, so
 * they are never sent in its place even when the BMC does not list ForceOff:
 *  - GracefulShutdown and PushPowerButton ask the operating system to shut down; a hung
 *    or partitioned node — the very node being fenced — may ignore them;
 *  - PowerCycle, FullPowerCycle, ForceRestart, GracefulRestart bring the power back;
 *  - Suspend, Pause, Nmi leave the node powered.
 * A BMC without ForceOff therefore fails this device (naming what it allows), and the
 * chain moves to the next device. For `on`: `On`, else `ForceOn`.
 */

type Json = Record<string, unknown>;

interface SystemDoc {
  path: string;
  powerState: unknown;
  resetTarget?: string;
  allowable?: string[];
  actionInfo?: string;
}

/** One operation's session: the token (session auth) and what was last read of the system. */
interface RedfishSession {
  token?: string;
  location?: string;
  system?: SystemDoc;
}

const OFF_RESET = "ForceOff";
const ON_RESETS = ["On", "ForceOn"];

export function powerStateOf(value: unknown): PowerState {
  if (value === "Off") return "off";
  // PoweringOff still has power; Paused is powered and resumable.
  if (value === "On" || value === "PoweringOn" || value === "PoweringOff" || value === "Paused") return "on";
  return "unknown";
}

/** The words of a Redfish error body: error.message plus every @Message.ExtendedInfo entry. */
export function redfishErrorText(body: unknown): string {
  if (typeof body === "string") return body.trim().slice(0, 300);
  const err = (body as { error?: Json } | undefined)?.error;
  if (!err) return "";
  const parts: string[] = [];
  if (typeof err.message === "string") parts.push(err.message);
  const infos = err["@Message.ExtendedInfo"];
  if (Array.isArray(infos)) {
    for (const info of infos as Json[]) {
      const id = info.MessageId ?? info.MessageID;
      const text = typeof info.Message === "string" ? info.Message : Array.isArray(info.MessageArgs) ? (info.MessageArgs as unknown[]).join(", ") : "";
      parts.push([typeof id === "string" ? id : undefined, text].filter(Boolean).join(": "));
    }
  }
  return parts.filter(Boolean).join("; ");
}

export class RedfishDevice extends PowerLoopDevice<RedfishSession> {
  readonly driver = "redfish";
  readonly label: string;
  readonly #config: RedfishDeviceConfig;
  readonly #http: AxiosInstance;
  readonly #logger: Logger;
  /** The system's path once discovered: it does not change. */
  #systemPath?: string;

  constructor(config: RedfishDeviceConfig, ctx: { logger: Logger }) {
    super(config);
    this.#config = config;
    this.#logger = ctx.logger;
    const base = new URL(config.address);
    base.username = "";
    base.password = "";
    const origin = base.toString().replace(/\/+$/, "");
    this.label = config.name ?? `redfish ${origin}${config.system_id ? ` ${config.system_id}` : ""}`;
    const ca = config.ca_file ? readFileSync(config.ca_file, "utf8") : undefined;
    this.#http = axios.create({
      baseURL: origin,
      headers: { Accept: "application/json", "OData-Version": "4.0" },
      httpsAgent: new HttpsAgent({ rejectUnauthorized: config.verify_tls, ...(ca ? { ca } : {}) }),
      // Talk to the BMC directly (no HTTP_PROXY), answer every status ourselves, follow no
      // redirect (a POST turned into a GET would be a silent no-op).
      proxy: false,
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: "json",
    });
  }

  async open(signal: AbortSignal): Promise<RedfishSession> {
    if (this.#config.auth !== "session") return {};
    const path = "/redfish/v1/SessionService/Sessions";
    const res = await this.#send("POST", path, {}, signal, { UserName: this.#config.username, Password: this.#config.password.reveal() });
    if (res.status !== 201 && res.status !== 200) throw this.#httpError("POST", path, res);
    const token = res.headers["x-auth-token"] as string | undefined;
    if (!token) throw new DeviceError(`POST ${path} answered ${res.status} without an X-Auth-Token header`, { permanent: true });
    const location = (res.headers.location as string | undefined) ?? ((res.data as Json | undefined)?.["@odata.id"] as string | undefined);
    return { token, ...(location ? { location } : {}) };
  }

  async close(session: RedfishSession, signal: AbortSignal): Promise<void> {
    if (!session.token || !session.location) return;
    try {
      const res = await this.#send("DELETE", session.location, session, signal);
      if (res.status >= 300) this.#logger.warn({ device: this.label, status: res.status, error: redfishErrorText(res.data) }, "redfish session logout refused");
    } catch (err) {
      this.#logger.warn({ device: this.label, error: errorMessage(err) }, "redfish session logout failed");
    }
  }

  async readStatus(session: RedfishSession, signal: AbortSignal): Promise<PowerStatus> {
    const system = await this.#readSystem(session, signal);
    session.system = system;
    const word = typeof system.powerState === "string" ? system.powerState : system.powerState === undefined ? "(missing)" : JSON.stringify(system.powerState);
    return { state: powerStateOf(system.powerState), raw: `PowerState: ${word}` };
  }

  async sendPower(session: RedfishSession, target: PowerTarget, signal: AbortSignal): Promise<string> {
    const system = session.system ?? (await this.#readSystem(session, signal));
    if (!system.resetTarget) throw new DeviceError(`${system.path} has no #ComputerSystem.Reset action`, { permanent: true });
    const allowed = system.allowable ?? (system.actionInfo ? await this.#actionInfoValues(system.actionInfo, session, signal) : undefined);
    const resetType = chooseResetType(target, allowed);
    const res = await this.#send("POST", system.resetTarget, session, signal, { ResetType: resetType });
    if (res.status === 200 || res.status === 202 || res.status === 204) return `${resetType} accepted (HTTP ${res.status})`;
    // Dell answers 409, HPE 400 when the system already is in that state: re-read, never trust.
    if (res.status === 400 || res.status === 409) {
      throw new DeviceError(`HTTP ${res.status} to ${resetType}: ${redfishErrorText(res.data) || "no error body"}`, { recheck: true });
    }
    throw this.#httpError("POST", system.resetTarget, res, resetType);
  }

  async #readSystem(session: RedfishSession, signal: AbortSignal): Promise<SystemDoc> {
    const path = this.#systemPath ?? (await this.#discover(session, signal));
    const doc = await this.#getJson(path, session, signal);
    this.#systemPath = path;
    const action = (doc.Actions as Json | undefined)?.["#ComputerSystem.Reset"] as Json | undefined;
    const allowable = action?.["ResetType@Redfish.AllowableValues"];
    return {
      path,
      powerState: doc.PowerState,
      ...(typeof action?.target === "string" ? { resetTarget: action.target } : {}),
      ...(Array.isArray(allowable) ? { allowable: allowable.filter((v): v is string => typeof v === "string") } : {}),
      ...(typeof action?.["@Redfish.ActionInfo"] === "string" ? { actionInfo: action["@Redfish.ActionInfo"] } : {}),
    };
  }

  /** The configured system, or the only member of the Systems collection. */
  async #discover(session: RedfishSession, signal: AbortSignal): Promise<string> {
    const id = this.#config.system_id;
    if (id) return id.startsWith("/") ? id : `/redfish/v1/Systems/${encodeURIComponent(id)}`;
    const root = await this.#getJson("/redfish/v1/", session, signal);
    const systemsPath = ((root.Systems as Json | undefined)?.["@odata.id"] as string | undefined) ?? "/redfish/v1/Systems";
    const collection = await this.#getJson(systemsPath, session, signal);
    const members = Array.isArray(collection.Members) ? (collection.Members as Json[]).map((m) => m["@odata.id"]).filter((p): p is string => typeof p === "string") : [];
    if (members.length === 1) return members[0]!;
    if (members.length === 0) throw new DeviceError(`${systemsPath} lists no ComputerSystem`, { permanent: true });
    throw new DeviceError(`${systemsPath} lists ${members.length} systems (${members.join(", ")}): set system_id to the one that runs this host`, { permanent: true });
  }

  async #actionInfoValues(path: string, session: RedfishSession, signal: AbortSignal): Promise<string[] | undefined> {
    const info = await this.#getJson(path, session, signal);
    const params = Array.isArray(info.Parameters) ? (info.Parameters as Json[]) : [];
    const values = params.find((p) => p.Name === "ResetType")?.AllowableValues;
    return Array.isArray(values) ? values.filter((v): v is string => typeof v === "string") : undefined;
  }

  async #getJson(path: string, session: RedfishSession, signal: AbortSignal): Promise<Json> {
    const res = await this.#send("GET", path, session, signal);
    if (res.status !== 200) throw this.#httpError("GET", path, res);
    if (res.data === null || typeof res.data !== "object") throw new DeviceError(`GET ${path}: the answer is not a JSON object`);
    return res.data as Json;
  }

  async #send(method: Method, path: string, session: RedfishSession, signal: AbortSignal, data?: Json): Promise<AxiosResponse> {
    const headers: Record<string, string> = {};
    if (session.token) headers["X-Auth-Token"] = session.token;
    if (data !== undefined) headers["Content-Type"] = "application/json";
    const basic = !session.token && this.#config.auth === "basic";
    try {
      return await this.#http.request({
        method,
        url: path,
        signal,
        headers,
        ...(basic ? { auth: { username: this.#config.username, password: this.#config.password.reveal() } } : {}),
        ...(data !== undefined ? { data } : {}),
      });
    } catch (err) {
      // Transport failures: no answer at all. Certificate problems will not go away by retrying.
      const code = (err as { code?: string }).code ?? "";
      const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
      throw new DeviceError(`${method} ${path}: ${signal.aborted ? "no answer before the deadline" : errorMessage(err)}${code ? ` (${code})` : ""}`, {
        permanent: tls,
        cause: err,
      });
    }
  }

  #httpError(method: string, path: string, res: AxiosResponse, what?: string): DeviceError {
    const words = redfishErrorText(res.data) || (res.statusText ?? "");
    const location = res.status >= 300 && res.status < 400 ? ` (redirected to ${String(res.headers.location)}: use that address)` : "";
    return new DeviceError(`${method} ${path}${what ? ` ${what}` : ""}: HTTP ${res.status}${words ? `: ${words}` : ""}${location}`, {
      // 5xx and 429 are worth another try; 4xx (401 bad credentials, 404 wrong system…) are not.
      permanent: !(res.status >= 500 || res.status === 429),
    });
  }
}

/** ForceOff for off (see the file comment for why nothing else), On/ForceOn for on. */
export function chooseResetType(target: PowerTarget, allowed: string[] | undefined): string {
  if (target === "off") {
    if (!allowed || allowed.includes(OFF_RESET)) return OFF_RESET;
    throw new DeviceError(
      `the BMC does not allow ResetType ForceOff (allows: ${allowed.join(", ") || "nothing"}); no other ResetType is sure to remove power, so none is sent`,
      { permanent: true },
    );
  }
  if (!allowed) return "On";
  const pick = ON_RESETS.find((t) => allowed.includes(t));
  if (!pick) throw new DeviceError(`the BMC allows neither On nor ForceOn (allows: ${allowed.join(", ") || "nothing"})`, { permanent: true });
  return pick;
}
