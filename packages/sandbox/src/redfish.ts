import { execFile } from "node:child_process";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import express, { type NextFunction, type Request, type Response } from "express";

/**
 * A Redfish BMC simulator (DMTF DSP0266 / ComputerSystem schema) for tests and the demo:
 * service root (readable unauthenticated), Systems collection, ComputerSystem with
 * PowerState and the `#ComputerSystem.Reset` action (target + AllowableValues, inline or
 * through ActionInfo), basic auth and SessionService sessions (X-Auth-Token), power changes
 * that take `powerDelayMs` (PoweringOff/PoweringOn in between), vendor-style answers to a
 * reset that has nothing to do (Dell iDRAC 409, HPE iLO 400), and fault injection.
 */

export type SimPowerState = "On" | "Off" | "PoweringOn" | "PoweringOff" | "Paused";

/** Every ResetType of the DMTF Resource schema. */
export const ALL_RESET_TYPES = [
  "On",
  "ForceOff",
  "GracefulShutdown",
  "GracefulRestart",
  "ForceRestart",
  "Nmi",
  "ForceOn",
  "PushPowerButton",
  "PowerCycle",
  "Suspend",
  "Pause",
  "Resume",
  "FullPowerCycle",
] as const;

export interface SimSystemSpec {
  id: string;
  name?: string;
  powerState: "On" | "Off";
  /** ResetType@Redfish.AllowableValues; default: On, ForceOff, GracefulShutdown, GracefulRestart, ForceRestart, Nmi, ForceOn, PushPowerButton. */
  allowableResetTypes?: string[];
}

export interface RedfishSimulatorOptions {
  systems: SimSystemSpec[];
  username: string;
  password: string;
  /** Time a power change takes; PowerState shows PoweringOff/PoweringOn meanwhile. Default 0. */
  powerDelayMs?: number;
  /** Answer to ForceOff on an Off system (or On on an On one): 409 like Dell iDRAC (default), 400 like HPE iLO. */
  alreadyInStateStatus?: 409 | 400;
  /** Status of an accepted reset: 204 (default, like sushy-tools), 200 with a message, 202 with a Task. */
  resetStatus?: 200 | 202 | 204;
  /** Where AllowableValues are published: inline on the action (default), in an ActionInfo resource, or not at all. */
  allowableValuesIn?: "inline" | "actionInfo" | "none";
  /** Open sessions allowed at once (BMCs allow few; default 16). */
  maxSessions?: number;
  /** Serve HTTPS with a self-signed certificate made by the `openssl` CLI. */
  tls?: boolean;
  host?: string;
  port?: number;
}

export interface SimRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** How the request authenticated. */
  auth: "none" | "basic" | "session" | "invalid";
  status?: number;
}

export interface SimSystem {
  readonly id: string;
  readonly powerState: SimPowerState;
  /** Set the power state at once (cancels a transition in progress). */
  setPowerState(state: SimPowerState): void;
  /** While true, resets are answered as accepted but nothing changes (a BMC that lies). */
  ignoreResets(ignore: boolean): void;
  /** ResetTypes received, accepted or not, in order. */
  readonly resets: string[];
  /** Called just before a reset is handled: lets a test change the world in between. */
  beforeReset?: (resetType: string) => void;
  /** Answer every reset with this status and message instead of handling it (null: normal). */
  answerResetsWith(fault: { status: number; message: string } | null): void;
  /** The next GETs of the system show these PowerStates, one per GET, whatever the power is (a BMC that answers wrongly). */
  scriptPowerStates(states: SimPowerState[]): void;
  /** The PowerState each GET of the system answered, in order. */
  readonly powerReads: SimPowerState[];
}

export interface RedfishSimulator {
  url: string;
  /** PEM of the self-signed certificate (tls only), usable as a CA. */
  certPem?: string;
  certFile?: string;
  system(id: string): SimSystem;
  readonly requests: SimRequest[];
  /** Sessions currently open. */
  sessionCount(): number;
  /** Answer every request (service root included) with this status (default 500); false stops it. */
  failAll(status?: number | false): void;
  close(): Promise<void>;
}

const DEFAULT_ALLOWED = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton"];
const BASE = "Base.1.8";

interface SystemState {
  spec: SimSystemSpec;
  power: SimPowerState;
  timer?: NodeJS.Timeout;
  ignore: boolean;
  fault: { status: number; message: string } | null;
  resets: string[];
  script: SimPowerState[];
  reads: SimPowerState[];
  handle: SimSystem;
}

interface Session {
  id: string;
  token: string;
  user: string;
}


type Json = Record<string, unknown>;

function message(id: string, text: string, args: string[] = [], severity = "Critical"): Json {
  return {
    "@odata.type": "#Message.v1_1_1.Message",
    MessageId: id.includes(".") ? id : `${BASE}.${id}`,
    Message: text,
    MessageArgs: args,
    Severity: severity,
    Resolution: "None",
  };
}

function redfishError(res: Response, status: number, id: string, text: string, args: string[] = []): void {
  res
    .status(status)
    .json({ error: { code: `${BASE}.GeneralError`, message: "A general error has occurred. See ExtendedInfo for more information.", "@Message.ExtendedInfo": [message(id, text, args)] } });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function selfSignedCert(): Promise<{ dir: string; key: string; cert: string; certFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-redfish-tls-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  try {
    await promisify(execFile)("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=lifeboat-redfish-simulator",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`HTTPS simulation needs the openssl CLI to make a self-signed certificate: ${(err as Error).message}`);
  }
  return { dir, key: await readFile(keyFile, "utf8"), cert: await readFile(certFile, "utf8"), certFile };
}

export async function startRedfishSimulator(opts: RedfishSimulatorOptions): Promise<RedfishSimulator> {
  const powerDelayMs = opts.powerDelayMs ?? 0;
  const alreadyStatus = opts.alreadyInStateStatus ?? 409;
  const resetStatus = opts.resetStatus ?? 204;
  const allowableIn = opts.allowableValuesIn ?? "inline";
  const maxSessions = opts.maxSessions ?? 16;
  const requests: SimRequest[] = [];
  const sessions = new Map<string, Session>();
  const tasks = new Map<string, { system: SystemState; target: SimPowerState }>();
  let failStatus: number | false = false;
  let nextSession = 1;
  let nextTask = 1;

  const systems = new Map<string, SystemState>();
  for (const spec of opts.systems) {
    const st = { spec, power: spec.powerState, ignore: false, fault: null, resets: [], script: [], reads: [] } as unknown as SystemState;
    st.handle = {
      id: spec.id,
      get powerState() {
        return st.power;
      },
      setPowerState(state) {
        clearTimeout(st.timer);
        st.power = state;
      },
      ignoreResets(ignore) {
        st.ignore = ignore;
      },
      get resets() {
        return st.resets;
      },
      answerResetsWith(fault) {
        st.fault = fault;
      },
      scriptPowerStates(states) {
        st.script = [...states];
      },
      get powerReads() {
        return st.reads;
      },
    };
    systems.set(spec.id, st);
  }

  const systemPath = (id: string): string => `/redfish/v1/Systems/${encodeURIComponent(id)}`;
  const allowedOf = (st: SystemState): string[] => st.spec.allowableResetTypes ?? DEFAULT_ALLOWED;

  const transition = (st: SystemState, via: SimPowerState, to: SimPowerState): void => {
    clearTimeout(st.timer);
    if (powerDelayMs <= 0) {
      st.power = to;
      return;
    }
    st.power = via;
    st.timer = setTimeout(() => {
      st.power = to;
    }, powerDelayMs);
  };

  /** What credentials a request carries, and whether they are good. */
  const authOf = (req: Request): SimRequest["auth"] => {
    const token = req.get("X-Auth-Token");
    const authz = req.get("Authorization");
    if (token !== undefined) return [...sessions.values()].some((x) => safeEqual(x.token, token)) ? "session" : "invalid";
    if (authz === undefined) return "none";
    if (!authz.startsWith("Basic ")) return "invalid";
    const [user, ...rest] = Buffer.from(authz.slice(6), "base64").toString("utf8").split(":");
    return safeEqual(user ?? "", opts.username) && safeEqual(rest.join(":"), opts.password) ? "basic" : "invalid";
  };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  // Log every request with its final status.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const entry: SimRequest = { method: req.method, path: req.path, headers: { ...req.headers }, body: undefined, auth: authOf(req) };
    requests.push(entry);
    res.locals.entry = entry;
    res.on("finish", () => {
      entry.status = res.statusCode;
    });
    res.setHeader("OData-Version", "4.0");
    next();
  });

  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (failStatus !== false) {
      redfishError(res, failStatus, "InternalError", "The request failed due to an internal service error.  The service is still operational.");
      return;
    }
    next();
  });

  // DSP0266: a request with an OData-Version other than 4.0 is refused (412).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const v = req.get("OData-Version");
    if (v !== undefined && v !== "4.0") {
      redfishError(res, 412, "HeaderInvalid", `The header 'OData-Version: ${v}' is invalid.`, [`OData-Version: ${v}`]);
      return;
    }
    next();
  });

  app.use(express.json({ type: ["application/json", "application/*+json"], limit: "64kb" }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    (_res.locals.entry as SimRequest).body = req.body as unknown;
    next();
  });

  // Unauthenticated: the Redfish version document and the service root.
  app.get("/redfish", (_req, res) => {
    res.json({ v1: "/redfish/v1/" });
  });
  app.get(["/redfish/v1", "/redfish/v1/"], (_req, res) => {
    res.json({
      "@odata.id": "/redfish/v1/",
      "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
      Id: "RootService",
      Name: "Root Service",
      RedfishVersion: "1.6.0",
      UUID: "92384634-2938-2342-8820-489239905423",
      Systems: { "@odata.id": "/redfish/v1/Systems" },
      SessionService: { "@odata.id": "/redfish/v1/SessionService" },
      Links: { Sessions: { "@odata.id": "/redfish/v1/SessionService/Sessions" } },
    });
  });

  // Login: the one POST that needs no credentials.
  app.post("/redfish/v1/SessionService/Sessions", (req, res) => {
    const body = (req.body ?? {}) as Json;
    if (typeof body.UserName !== "string" || typeof body.Password !== "string") {
      redfishError(res, 400, "PropertyMissing", "The property UserName/Password is a required property and must be included in the request.", ["UserName"]);
      return;
    }
    if (!safeEqual(body.UserName, opts.username) || !safeEqual(body.Password, opts.password)) {
      redfishError(res, 401, "ResourceAtUriUnauthorized", "While accessing the resource at /redfish/v1/SessionService/Sessions, the service received an authorization error 'bad credentials'.", [
        "/redfish/v1/SessionService/Sessions",
        "bad credentials",
      ]);
      return;
    }
    if (sessions.size >= maxSessions) {
      redfishError(res, 503, "SessionLimitExceeded", "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.");
      return;
    }
    const id = String(nextSession++);
    const token = randomBytes(16).toString("hex");
    sessions.set(id, { id, token, user: body.UserName });
    const path = `/redfish/v1/SessionService/Sessions/${id}`;
    res
      .status(201)
      .setHeader("X-Auth-Token", token)
      .setHeader("Location", path)
      .json({ "@odata.id": path, "@odata.type": "#Session.v1_0_0.Session", Id: id, Name: "User Session", UserName: body.UserName, Password: null });
  });

  // Everything else needs basic credentials or a session token.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    const auth = (res.locals.entry as SimRequest).auth;
    if (auth === "basic" || auth === "session") {
      next();
      return;
    }
    res.setHeader("WWW-Authenticate", 'Basic realm="Redfish"');
    redfishError(res, 401, "NoValidSession", "There is no valid session established with the implementation.");
  });

  app.get("/redfish/v1/SessionService", (_req, res) => {
    res.json({
      "@odata.id": "/redfish/v1/SessionService",
      "@odata.type": "#SessionService.v1_1_8.SessionService",
      Id: "SessionService",
      Name: "Session Service",
      ServiceEnabled: true,
      SessionTimeout: 1800,
      Sessions: { "@odata.id": "/redfish/v1/SessionService/Sessions" },
    });
  });
  app.get("/redfish/v1/SessionService/Sessions", (_req, res) => {
    const members = [...sessions.keys()].map((id) => ({ "@odata.id": `/redfish/v1/SessionService/Sessions/${id}` }));
    res.json({
      "@odata.id": "/redfish/v1/SessionService/Sessions",
      "@odata.type": "#SessionCollection.SessionCollection",
      Name: "Session Collection",
      Members: members,
      "Members@odata.count": members.length,
    });
  });
  app.delete("/redfish/v1/SessionService/Sessions/:id", (req, res) => {
    const id = String(req.params.id);
    if (!sessions.delete(id)) {
      redfishError(res, 404, "ResourceNotFound", `The requested resource of type Session named '${id}' was not found.`, ["Session", id]);
      return;
    }
    res.status(204).end();
  });

  app.get("/redfish/v1/Systems", (_req, res) => {
    const members = [...systems.keys()].map((id) => ({ "@odata.id": systemPath(id) }));
    res.json({
      "@odata.id": "/redfish/v1/Systems",
      "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
      Name: "Computer System Collection",
      Members: members,
      "Members@odata.count": members.length,
    });
  });

  const findSystem = (req: Request, res: Response): SystemState | undefined => {
    const id = String(req.params.id);
    const st = systems.get(id);
    if (!st) redfishError(res, 404, "ResourceNotFound", `The requested resource of type ComputerSystem named '${id}' was not found.`, ["ComputerSystem", id]);
    return st;
  };

  app.get("/redfish/v1/Systems/:id", (req, res) => {
    const st = findSystem(req, res);
    if (!st) return;
    const path = systemPath(st.spec.id);
    const action: Json = { target: `${path}/Actions/ComputerSystem.Reset` };
    if (allowableIn === "inline") action["ResetType@Redfish.AllowableValues"] = allowedOf(st);
    if (allowableIn === "actionInfo") action["@Redfish.ActionInfo"] = `${path}/ResetActionInfo`;
    const shown = st.script.shift() ?? st.power;
    st.reads.push(shown);
    res.json({
      "@odata.id": path,
      "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
      Id: st.spec.id,
      Name: st.spec.name ?? st.spec.id,
      SystemType: "Physical",
      PowerState: shown,
      Status: { State: "Enabled", Health: "OK" },
      Actions: { "#ComputerSystem.Reset": action },
    });
  });

  app.get("/redfish/v1/Systems/:id/ResetActionInfo", (req, res) => {
    const st = findSystem(req, res);
    if (!st) return;
    if (allowableIn !== "actionInfo") {
      redfishError(res, 404, "ResourceMissingAtURI", `The resource at the URI ${req.path} was not found.`, [req.path]);
      return;
    }
    res.json({
      "@odata.id": `${systemPath(st.spec.id)}/ResetActionInfo`,
      "@odata.type": "#ActionInfo.v1_1_2.ActionInfo",
      Id: "ResetActionInfo",
      Name: "Reset Action Info",
      Parameters: [{ Name: "ResetType", Required: true, DataType: "String", AllowableValues: allowedOf(st) }],
    });
  });

  app.post("/redfish/v1/Systems/:id/Actions/ComputerSystem.Reset", (req, res) => {
    const st = findSystem(req, res);
    if (!st) return;
    if (!req.is("application/json")) {
      redfishError(res, 415, "UnsupportedMediaType", "The request specified a media type in the Content-Type header that is not supported.");
      return;
    }
    const resetType = ((req.body ?? {}) as Json).ResetType;
    if (typeof resetType !== "string") {
      redfishError(res, 400, "ActionParameterMissing", "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.", [
        "ComputerSystem.Reset",
        "ResetType",
      ]);
      return;
    }
    st.resets.push(resetType);
    st.handle.beforeReset?.(resetType);
    if (!allowedOf(st).includes(resetType)) {
      redfishError(res, 400, "ActionParameterValueNotInList", `The value '${resetType}' for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.`, [
        resetType,
        "ResetType",
        "ComputerSystem.Reset",
      ]);
      return;
    }
    if (st.fault) {
      redfishError(res, st.fault.status, "GeneralError", st.fault.message);
      return;
    }
    const wantsOff = ["ForceOff", "GracefulShutdown"].includes(resetType);
    const wantsOn = ["On", "ForceOn"].includes(resetType);
    if ((wantsOff && st.power === "Off") || (wantsOn && st.power === "On")) {
      const word = wantsOff ? "off" : "on";
      if (alreadyStatus === 400) {
        // HPE iLO's answer.
        res.status(400).json({
          error: {
            code: "iLO.0.10.ExtendedInfo",
            message: "See @Message.ExtendedInfo for more information.",
            "@Message.ExtendedInfo": [{ MessageId: "iLO.2.14.InvalidOperationForSystemState", MessageArgs: [`Power is ${word}`] }],
          },
        });
      } else {
        // Dell iDRAC's answer.
        redfishError(res, 409, "OperationNotAllowed", `Unable to perform the operation because the server is already powered ${word}.`);
      }
      return;
    }
    let target: SimPowerState = st.power;
    if (!st.ignore) {
      if (wantsOff) {
        target = "Off";
        transition(st, "PoweringOff", "Off");
      } else if (wantsOn) {
        target = "On";
        transition(st, "PoweringOn", "On");
      } else if (resetType === "PushPowerButton") {
        target = st.power === "Off" ? "On" : "Off";
        transition(st, target === "On" ? "PoweringOn" : "PoweringOff", target);
      } else if (["ForceRestart", "GracefulRestart", "PowerCycle", "FullPowerCycle"].includes(resetType)) {
        target = "On";
        transition(st, "PoweringOn", "On");
      }
    }
    if (resetStatus === 204) {
      res.status(204).end();
    } else if (resetStatus === 200) {
      res.status(200).json({ error: { code: `${BASE}.Success`, message: "Successfully Completed Request", "@Message.ExtendedInfo": [message("Success", "Successfully Completed Request", [], "OK")] } });
    } else {
      const id = String(nextTask++);
      tasks.set(id, { system: st, target });
      const path = `/redfish/v1/TaskService/Tasks/${id}`;
      res.status(202).setHeader("Location", `${path}/Monitor`).json(taskBody(id, "Running"));
    }
  });

  const taskBody = (id: string, state: string): Json => ({
    "@odata.id": `/redfish/v1/TaskService/Tasks/${id}`,
    "@odata.type": "#Task.v1_4_3.Task",
    Id: id,
    Name: "System Reset Task",
    TaskState: state,
    TaskStatus: "OK",
    TaskMonitor: `/redfish/v1/TaskService/Tasks/${id}/Monitor`,
  });
  app.get(["/redfish/v1/TaskService/Tasks/:id", "/redfish/v1/TaskService/Tasks/:id/Monitor"], (req, res) => {
    const id = String(req.params.id);
    const t = tasks.get(id);
    if (!t) {
      redfishError(res, 404, "ResourceNotFound", `The requested resource of type Task named '${id}' was not found.`, ["Task", id]);
      return;
    }
    res.json(taskBody(id, t.system.power === t.target ? "Completed" : "Running"));
  });

  app.use((req: Request, res: Response) => {
    redfishError(res, 404, "ResourceMissingAtURI", `The resource at the URI ${req.path} was not found.`, [req.path]);
  });
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === "entity.parse.failed") {
      redfishError(res, 400, "MalformedJSON", "The request body submitted was malformed JSON and could not be parsed by the receiving service.");
      return;
    }
    redfishError(res, err.status ?? 500, "InternalError", err.message);
  });

  let certDir: string | undefined;
  let server: Server;
  let certPem: string | undefined;
  let certFile: string | undefined;
  if (opts.tls) {
    const c = await selfSignedCert();
    certDir = c.dir;
    certPem = c.cert;
    certFile = c.certFile;
    server = createHttpsServer({ key: c.key, cert: c.cert }, app);
  } else {
    server = createHttpServer(app);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  let closed = false;

  return {
    url: `${opts.tls ? "https" : "http"}://${host}:${addr.port}`,
    ...(certPem !== undefined ? { certPem, certFile } : {}),
    system(id) {
      const st = systems.get(id);
      if (!st) throw new Error(`no simulated system ${id}`);
      return st.handle;
    },
    requests,
    sessionCount: () => sessions.size,
    failAll(status = 500) {
      failStatus = status;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const st of systems.values()) clearTimeout(st.timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (certDir) await rm(certDir, { recursive: true, force: true });
    },
  };
}
