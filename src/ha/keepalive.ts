import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from "etcd3";
import { EtcdTimeoutError } from "../etcd/deadline.js";

/**
 * Renew a lease once and answer its new TTL in seconds (0: etcd no longer knows the lease).
 * etcd only renews over the LeaseKeepAlive stream; a short stream per renewal, with our own
 * deadline, makes each renewal an answer or an error — never a silent wait.
 */
export function keepAliveOnce(client: Etcd3, leaseId: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | null = null;
    let settled = false;
    const finish = (err: Error | null, ttl = 0): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        stream?.cancel();
        reject(err);
      } else {
        stream?.end();
        resolve(ttl);
      }
    };
    const timer = setTimeout(() => finish(new EtcdTimeoutError(`lease keep-alive: no answer from etcd within ${Math.round(timeoutMs)} ms`)), timeoutMs);
    client.leaseClient.leaseKeepAlive().then(
      (s) => {
        stream = s;
        if (settled) {
          s.on("error", () => undefined); // the cancellation itself surfaces as an error
          s.cancel();
          return;
        }
        s.on("data", (res) => finish(null, Number(res.TTL)));
        s.on("error", (err) => finish(err));
        s.on("end", () => finish(new Error("lease keep-alive stream ended without an answer")));
        s.write({ ID: leaseId });
      },
      (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
    );
  });
}
