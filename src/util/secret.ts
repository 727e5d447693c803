import { inspect } from "node:util";

/**
 * A value that must never reach a log line, an argv, a metric or an API answer.
 * Serialising or printing it yields "[redacted]"; only `reveal()` returns the value,
 * so every place that uses a secret is greppable.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  toString(): string {
    return "[redacted]";
  }

  toJSON(): string {
    return "[redacted]";
  }

  [inspect.custom](): string {
    return "Secret([redacted])";
  }
}
