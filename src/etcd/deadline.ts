/** Raised when an etcd call did not answer within lifeboat's own deadline. */
export class EtcdTimeoutError extends Error {
  override name = "EtcdTimeoutError";
}

/**
 * Settle with `work`, or reject after `ms` — whatever the client library does meanwhile.
 * (etcd3 retries some failures internally, so its per-try gRPC deadline is not a bound on
 * the whole call; the leader and the claims need one.)
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new EtcdTimeoutError(`${what}: no answer from etcd within ${Math.round(ms)} ms`)), Math.max(0, ms));
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
