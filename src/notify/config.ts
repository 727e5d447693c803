import { z } from "zod";

/** Placeholder section, completed with the email and webhook notifiers. */
export const notificationsSchema = z.strictObject({
  operators: z.array(z.string().email()).default([]).describe("Operator email addresses: one summary per recovery."),
});
export type NotificationsConfig = z.output<typeof notificationsSchema>;
