import { z } from "zod";

/** Placeholder section, completed with the safety gates. */
export const gatesSchema = z.strictObject({
  confirmations: z
    .array(z.looseObject({ driver: z.enum(["nova-service"]) }))
    .default([{ driver: "nova-service" }])
    .describe("Checks that must all agree the host is dead before fencing."),
});
export type GatesConfig = z.output<typeof gatesSchema>;
