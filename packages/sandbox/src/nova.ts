import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { SandboxState } from "./cloud-state.js";
import { locals, newRequestId, novaError, novaMicroversion, requireToken, sendJson } from "./nova-common.js";
import { mountInventory } from "./nova-inventory.js";
import { mountMigrations } from "./nova-migrations.js";
import { mountServers } from "./nova-servers.js";
import { mountServices } from "./nova-services.js";

/**
 * The simulated Nova API, mounted under `/compute`: the versions root, the v2.1 version
 * document, then (token, then microversion) os-services, servers, os-migrations,
 * os-hypervisors, os-aggregates and flavors.
 */
export function createNovaRouter(state: SandboxState): Router {
  const router = express.Router();
  const root = (req: Request): string => `${req.protocol}://${req.get("host")}${(req.res?.locals as { prefix?: string } | undefined)?.prefix ?? ""}/compute`;
  const versionEntry = (req: Request, full: boolean): Record<string, unknown> => {
    const v: Record<string, unknown> = {
      id: "v2.1",
      status: "CURRENT",
      version: state.opts.maxMicroversion,
      min_version: state.opts.minMicroversion,
      updated: "2013-07-23T11:33:21Z",
      links: [{ rel: "self", href: `${root(req)}/v2.1/` }],
    };
    if (full) {
      (v.links as unknown[]).push({ rel: "describedby", type: "text/html", href: "http://docs.openstack.org/" });
      v["media-types"] = [{ base: "application/json", type: "application/vnd.openstack.compute+json;version=2.1" }];
    }
    return v;
  };

  router.get("/", (req: Request, res: Response) => {
    sendJson(res, 200, {
      versions: [
        { id: "v2.0", status: "SUPPORTED", version: "", min_version: "", updated: "2011-01-21T11:33:21Z", links: [{ rel: "self", href: `${root(req)}/v2/` }] },
        versionEntry(req, false),
      ],
    });
  });

  const v21 = express.Router();
  v21.use((req: Request, res: Response, next: NextFunction) => {
    const id = newRequestId();
    res.set("x-openstack-request-id", id);
    res.set("x-compute-request-id", id);
    locals(res).root = root(req);
    next();
  });
  // The version document is served without a token (nova's api-paste `oscomputeversion_v2`).
  v21.get("/", novaMicroversion(state), (req: Request, res: Response) => sendJson(res, 200, { version: versionEntry(req, true) }));
  v21.use(requireToken(state, (req) => `${req.protocol}://${req.get("host")}/identity`));
  v21.use(novaMicroversion(state));
  mountServices(v21, state);
  mountServers(v21, state);
  mountMigrations(v21, state);
  mountInventory(v21, state);
  v21.use((_req: Request, res: Response) => novaError(res, 404, "The resource could not be found."));
  router.use("/v2.1", v21);
  return router;
}
