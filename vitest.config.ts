import { defineConfig } from "vitest/config";

// Integration tests start real processes (ipmi_sim, Prometheus, Alertmanager, etcd) on
// loopback ports; files run in parallel workers but each test inside a file runs in order.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
