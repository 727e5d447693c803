import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

/**
 * Time-ordered, URL-safe identifiers such as `r-01jd3k5x7m-4f9q2c`: the first part is the
 * millisecond clock in base32 (so ids sort by creation), the second is random.
 */
export function newId(prefix: string, now: number = Date.now()): string {
  let t = now;
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(6);
  let rand = "";
  for (const b of rnd) rand += ALPHABET[b % 32]!;
  return `${prefix}-${time}-${rand}`;
}
