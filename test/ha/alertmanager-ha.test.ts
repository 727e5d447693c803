import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { startDaemon, type Daemon, jsonRequest } from "../support/daemon.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { run } from "../rules/tools.js";
import { ROOT } from "../kit/served.js";
import { startHaPair, type HaPair } from "../kit/pair.js";
import { sideEffects, issuedByBoth } from "./side-effects.js";
import { WEBHOOK_TOKEN } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

/**
 * config/alertmanager-ha.example.yml: valid for amtool, and — run by a real Alertmanager
 * against a real pair of lifeboat processes — it delivers each alert to both instances;
 * one instance that does not answer holds nothing up, and the duplicates end in one event
 * and one recovery.
 */
const EXAMPLE = resolve(ROOT, "config/alertmanager-ha.example.yml");

interface Route {
  receiver?: string;
  matchers?: string[];
  continue?: boolean;
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: Route[];
}
interface WebhookConfig {
  url: string;
  send_resolved?: boolean;
  http_config?: { authorization?: { type?: string; credentials_file?: string } };
}
interface AmConfig {
  route: Route;
  receivers: { name: string; webhook_configs?: WebhookConfig[] }[];
}

const example = parse(readFileSync(EXAMPLE, "utf8")) as AmConfig;
const PAIR_RECEIVER = example.route.routes?.find((r) => r.matchers?.includes('alertname="ComputeNodeDown"'))?.receiver ?? "";

describe("config/alertmanager-ha.example.yml", () => {
  it("passes amtool check-config", async () => {
    const r = await run("amtool", ["check-config", EXAMPLE]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS/);
  });

  it("routes ComputeNodeDown of either detection profile to one receiver with a webhook per lifeboat instance (and to people)", async () => {
    for (const detection of [[], ["detection=fast"], ["detection=conservative"]]) {
      const r = await run("amtool", ["config", "routes", "test", `--config.file=${EXAMPLE}`, "alertname=ComputeNodeDown", "host=compute-1", ...detection]);
      expect(r.code, r.output).toBe(0);
      expect(r.output.split("\n").find((l) => l.trim() && !l.startsWith("Warning"))?.trim().split(","), detection.join()).toEqual([PAIR_RECEIVER, "operators"]);
    }
    const hooks = example.receivers.find((x) => x.name === PAIR_RECEIVER)?.webhook_configs ?? [];
    expect(hooks).toHaveLength(2);
    expect(new Set(hooks.map((h) => new URL(h.url).host)).size).toBe(2);
    for (const h of hooks) {
      expect(h.url).toMatch(/\/api\/v1\/alerts$/);
      expect(h.send_resolved).toBe(true);
      expect(h.http_config?.authorization).toMatchObject({ type: "Bearer", credentials_file: expect.any(String) as string });
      // Debian's Alertmanager 0.25 rejects `timeout` (added in 0.28).
      expect(h).not.toHaveProperty("timeout");
    }
  });
});

describe("a real Alertmanager with the HA example, posting to a real pair", () => {
  let etcd: EtcdServer;
  let pair: HaPair | undefined;
  let am: Daemon | undefined;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async () => {
    await am?.stop();
    await pair?.close();
    am = undefined;
    pair = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  /** The example with the pair's addresses, a token file and short timers; nothing else changed. */
  function configFor(urls: string[], tokenFile: string): string {
    const doc = parse(readFileSync(EXAMPLE, "utf8")) as AmConfig;
    const receiver = doc.receivers.find((r) => r.name === PAIR_RECEIVER)!;
    expect(receiver.webhook_configs).toHaveLength(urls.length);
    receiver.webhook_configs = receiver.webhook_configs!.map((h, i) => ({
      ...h,
      url: `${urls[i]!}/api/v1/alerts`,
      http_config: { authorization: { type: "Bearer", credentials_file: tokenFile } },
    }));
    for (const route of doc.route.routes!.filter((r) => r.receiver === PAIR_RECEIVER)) {
      Object.assign(route, { group_wait: "1s", group_interval: "10s", repeat_interval: "1h" });
    }
    return stringify(doc);
  }

  it("delivers to both instances; a follower that does not answer holds nothing up; one event, one recovery", async () => {
    pair = await startHaPair({
      etcd,
      sandbox: { cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 500 }, powerDelayMs: 200 },
      config: { gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] } },
    });
    const p = pair;
    const leader = await p.leader();
    const follower = p.other(leader);
    const urls = [p.instances["lifeboat-a"].url, p.instances["lifeboat-b"].url];
    am = await startDaemon({
      name: "alertmanager",
      spec: (port, dir) => {
        const tokenFile = join(dir, "lifeboat-webhook.token");
        writeFileSync(tokenFile, WEBHOOK_TOKEN, { mode: 0o600 });
        writeFileSync(join(dir, "alertmanager.yml"), configFor(urls, tokenFile));
        return {
          command: "/usr/bin/prometheus-alertmanager",
          args: [
            `--config.file=${join(dir, "alertmanager.yml")}`,
            `--storage.path=${join(dir, "data")}`,
            `--web.listen-address=127.0.0.1:${port}`,
            "--cluster.listen-address=",
            "--log.level=warn",
          ],
          readyPath: "/-/ready",
        };
      },
    });

    const host = "compute-1";
    p.sandbox.failHost(host);
    const cloud = p.sandbox.cloud;
    await waitFor(() => {
      cloud.settle();
      return cloud.clock.now() - cloud.state.hosts.get(host)!.updatedAtMs > cloud.state.opts.serviceDownTimeMs + 1_000;
    }, 15_000, `${host} down in Nova`);

    // The follower hangs (SIGSTOP: its connection accepts, nothing answers).
    follower.kill("SIGSTOP");
    await jsonRequest("POST", `${am.url}/api/v2/alerts`, [
      { labels: { alertname: "ComputeNodeDown", host, instance: `${host}:9100`, severity: "critical" }, annotations: { summary: `${host} is down` }, startsAt: new Date().toISOString() },
    ]);
    // The leader got it and runs the recovery meanwhile.
    const r = await waitFor(async () => (await p.store.listRecoveries({ host, limit: 1 }))[0], 20_000, "the recovery");
    expect((await p.store.listEvents({ host, limit: 10 }))[0]?.deliveries).toBe(1);
    follower.kill("SIGCONT");

    // Alertmanager's pending delivery to the follower completes: a second delivery of the same event.
    await waitFor(async () => (await p.store.listEvents({ host, limit: 10 }))[0]?.deliveries === 2, 20_000, "the follower's delivery");
    for (const i of [leader, follower]) expect(await accepted(i.url), i.id).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await p.store.getRecovery(r.id))?.state === "completed", 60_000, "the recovery to complete");
    const events = await p.store.listEvents({ host, limit: 10 });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ deliveries: 2, recoveryId: r.id });
    expect(await p.store.listRecoveries({ host })).toHaveLength(1);
    expect(p.sandbox.redfish.system(host).resets).toEqual(["ForceOff"]);
    expect(issuedByBoth(sideEffects(p.requests))).toEqual([]);
  }, 120_000);
});

/** Webhook requests an instance answered 202. */
async function accepted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^lifeboat_webhook_requests_total\{code="202"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}
