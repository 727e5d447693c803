import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "../../src/metrics.js";

/** lifeboat's real metrics registry on a loopback /metrics endpoint, for Prometheus to scrape. */
export async function serveMetrics(metrics: Metrics): Promise<{ address: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/**
 * Records what one ended recovery leaves in the metrics (plus a failed fence attempt), so
 * that every labelled series the dashboard queries exists. Label values are the ones
 * src/metrics.ts documents.
 */
export function recordSampleRecovery(m: Metrics): void {
  m.leader.set(1);
  m.webhookRequests.inc({ code: "202" });
  m.webhookRequests.inc({ code: "401" });
  m.alertsReceived.inc({ status: "firing", trigger: "true" });
  m.alertsReceived.inc({ status: "resolved", trigger: "true" });
  m.recoveriesStarted.inc({ trigger: "alert" });
  m.recoveriesInProgress.set({ state: "evacuating" }, 1);
  m.recoveriesInProgress.set({ state: "blocked" }, 0);
  m.gateDecisions.inc({ gate: "nova-service", result: "pass" });
  m.gateDecisions.inc({ gate: "storm", result: "pass" });
  m.fenceOperations.inc({ driver: "ipmi", operation: "off", result: "failure" });
  m.fenceOperations.inc({ driver: "ipmi", operation: "off", result: "success" });
  m.fenceOperations.inc({ driver: "ipmi", operation: "status", result: "success" });
  m.fenceDuration.observe({ driver: "ipmi", operation: "off" }, 3.2);
  m.instancesEvacuated.inc({ result: "evacuated" }, 4);
  m.instancesEvacuated.inc({ result: "failed" });
  m.evacuationDuration.observe(42);
  for (const [milestone, s] of [["validated", 35], ["fenced", 48], ["isolated", 50], ["instance_active", 95], ["done", 130]] as const) {
    m.recoveryMilestone.observe({ milestone }, s);
  }
  for (const [stage, s] of [["validating", 4], ["fencing", 12], ["isolating", 2], ["evacuating", 70], ["notifying", 1]] as const) {
    m.stageDuration.observe({ stage }, s);
  }
  m.recoveryDuration.observe({ outcome: "partial" }, 130);
  m.recoveries.inc({ outcome: "partial" });
  m.notifications.inc({ channel: "email", result: "sent" });
  m.notifications.inc({ channel: "webhook", result: "failed" });
  m.stormGuardTrips.inc(0);
}
