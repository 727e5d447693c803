/**
 * The Keystone service catalog and how lifeboat picks an endpoint from it: by service type,
 * interface and (when given) region.
 */
export interface CatalogEndpoint {
  id?: string;
  interface: string;
  region_id?: string | null;
  region?: string | null;
  url: string;
}

export interface CatalogEntry {
  type: string;
  name?: string;
  id?: string;
  endpoints: CatalogEndpoint[];
}

export class EndpointNotFoundError extends Error {
  override name = "EndpointNotFoundError";
}

export interface EndpointQuery {
  type: string;
  interface: string;
  region?: string;
  /** Substituted for `%(tenant_id)s`-style placeholders some catalogs still carry. */
  projectId?: string;
}

export function selectEndpoint(catalog: readonly CatalogEntry[], q: EndpointQuery): string {
  const candidates = catalog
    .filter((e) => e.type === q.type)
    .flatMap((e) => e.endpoints)
    .filter((ep) => ep.interface === q.interface)
    .filter((ep) => !q.region || ep.region_id === q.region || ep.region === q.region);
  const chosen = candidates[0];
  if (!chosen) {
    const have = catalog
      .filter((e) => e.type === q.type)
      .flatMap((e) => e.endpoints.map((ep) => `${ep.interface}@${ep.region_id ?? ep.region ?? "?"}`));
    throw new EndpointNotFoundError(
      `no ${q.type} endpoint with interface ${q.interface}${q.region ? ` in region ${q.region}` : ""} in the catalog` +
        (have.length > 0 ? ` (it has ${have.join(", ")})` : ` (it has no ${q.type} service)`),
    );
  }
  return substituteProject(chosen.url, q.projectId);
}

function substituteProject(url: string, projectId: string | undefined): string {
  if (!projectId) return url;
  return url.replace(/[%$]\((tenant_id|project_id)\)s/g, projectId);
}

/** The regions present in the catalog for a service type, to explain ambiguous choices. */
export function regionsOf(catalog: readonly CatalogEntry[], type: string): string[] {
  const set = new Set<string>();
  for (const e of catalog) {
    if (e.type !== type) continue;
    for (const ep of e.endpoints) {
      const r = ep.region_id ?? ep.region;
      if (r) set.add(r);
    }
  }
  return [...set];
}

/**
 * Join an endpoint and a request path. Identity paths carry their version (`/v3/users/…`)
 * while catalogs list Keystone as `…/v3/` or bare: the version is taken from the path.
 */
export function joinEndpoint(endpoint: string, path: string, service: string): string {
  if (/^https?:\/\//.test(path)) return path;
  let base = endpoint.replace(/\/+$/, "");
  let p = path.startsWith("/") ? path : `/${path}`;
  if (service === "identity") {
    base = base.replace(/\/v3$/, "");
    if (!p.startsWith("/v3/") && p !== "/v3") p = `/v3${p}`;
  }
  return base + p;
}
