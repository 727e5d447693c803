import { z } from "zod";
import type { OpenStackSession } from "./types.js";

/**
 * The few Placement calls a capacity check needs: root resource providers (one per compute
 * node; uuid = the hypervisor id), their inventories and usages.
 *
 * Pinned to 1.14 (Queens): the oldest version that tells a root provider from a nested one
 * (`parent_provider_uuid`), which is all lifeboat needs beyond 1.0.
 */
export const PLACEMENT_MICROVERSION = "1.14";

const providerSchema = z.looseObject({
  uuid: z.string(),
  name: z.string(),
  generation: z.number().optional(),
  parent_provider_uuid: z.string().nullish(),
  root_provider_uuid: z.string().nullish(),
});
export type ResourceProvider = z.infer<typeof providerSchema>;

const inventorySchema = z.looseObject({
  total: z.number(),
  reserved: z.number().default(0),
  allocation_ratio: z.number().default(1),
  min_unit: z.number().optional(),
  max_unit: z.number().optional(),
  step_size: z.number().optional(),
});
export type Inventory = z.infer<typeof inventorySchema>;

// Response bodies, built once (a zod schema compiles its parser on first use).
const providersBody = z.looseObject({ resource_providers: z.array(providerSchema) });
const inventoriesBody = z.looseObject({ inventories: z.record(z.string(), inventorySchema) });
const usagesBody = z.looseObject({ usages: z.record(z.string(), z.number()) });

export class PlacementResponseError extends Error {
  override name = "PlacementResponseError";
}

export class PlacementClient {
  constructor(private readonly session: OpenStackSession) {}

  private async get<T>(path: string, schema: z.ZodType<T>, query?: Record<string, string>, signal?: AbortSignal): Promise<T> {
    const res = await this.session.request({ service: "placement", method: "GET", path, query, microversion: PLACEMENT_MICROVERSION, signal });
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) throw new PlacementResponseError(`unexpected answer to GET ${path}: ${parsed.error.issues[0]?.message ?? "?"}`);
    return parsed.data;
  }

  async listResourceProviders(filter: { name?: string } = {}, signal?: AbortSignal): Promise<ResourceProvider[]> {
    const query: Record<string, string> = {};
    if (filter.name) query.name = filter.name;
    const body = await this.get("/resource_providers", providersBody, query, signal);
    return body.resource_providers;
  }

  async inventories(uuid: string, signal?: AbortSignal): Promise<Record<string, Inventory>> {
    const body = await this.get(
      `/resource_providers/${encodeURIComponent(uuid)}/inventories`,
      inventoriesBody,
      undefined,
      signal,
    );
    return body.inventories;
  }

  async usages(uuid: string, signal?: AbortSignal): Promise<Record<string, number>> {
    const body = await this.get(
      `/resource_providers/${encodeURIComponent(uuid)}/usages`,
      usagesBody,
      undefined,
      signal,
    );
    return body.usages;
  }
}

/** What can still be allocated of one resource class: (total − reserved) × allocation_ratio − used. */
export function freeOf(inv: Inventory | undefined, used: number | undefined): { total: number; used: number; free: number } {
  if (!inv) return { total: 0, used: used ?? 0, free: 0 };
  const capacity = Math.floor((inv.total - inv.reserved) * inv.allocation_ratio);
  const u = used ?? 0;
  return { total: capacity, used: u, free: Math.max(0, capacity - u) };
}
