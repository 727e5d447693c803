import { defineConfig } from "vitest/config";

// Integration tests start real processes (ipmi_sim, Prometheus, Alertmanager, etcd) on
// loopback ports; files run in parallel workers but each test inside a file runs in order.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Temporary directories a test file made and left are removed when it ends.
    setupFiles: ["test/setup/temp-dirs.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Most integration tests wait on real processes (ipmi_sim, Prometheus, etcd…), not on the
    // CPU: three files at a time keep a 2-core machine busy without starving timing bounds.
    maxWorkers: 3,
    reporters: ["default"],
  },
});
