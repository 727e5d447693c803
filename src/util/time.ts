/** Seconds from an ISO instant to `now` (clock ms), never negative. */export function secondsSince(iso: string, now: number): number {
  return Math.max(0, (now - Date.parse(iso)) / 1000);
}
