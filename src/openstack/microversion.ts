/** OpenStack API microversions ("2.53"): parsing and comparing. */

export function parseMicroversion(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  if (!m) throw new Error(`"${v}" is not a microversion (MAJOR.MINOR)`);
  return [Number(m[1]), Number(m[2])];
}

export function isMicroversion(v: string): boolean {
  return /^\d+\.\d+$/.test(v.trim());
}

/** Negative when a < b, zero when equal, positive when a > b ("2.9" < "2.10"). */
export function compareMicroversions(a: string, b: string): number {
  const [am, an] = parseMicroversion(a);
  const [bm, bn] = parseMicroversion(b);
  return am !== bm ? am - bm : an - bn;
}

export function atLeast(current: string, wanted: string): boolean {
  return compareMicroversions(current, wanted) >= 0;
}

/** The highest of `wanted` within [min, max], or undefined. */
export function highestSupported(wanted: readonly string[], min: string, max: string): string | undefined {
  return [...wanted]
    .filter((v) => compareMicroversions(v, min) >= 0 && compareMicroversions(v, max) <= 0)
    .sort(compareMicroversions)
    .at(-1);
}

export function minMicroversion(a: string, b: string): string {
  return compareMicroversions(a, b) <= 0 ? a : b;
}
