import type { Logger } from "../../logging.js";
import { errorMessage } from "../../util/errors.js";
import type { ConsoleChange } from "./deps.js";

/** One page as it updates live: its sections (id → HTML) and the journal changes that concern it. */
export interface LiveView {
  /** Pages with the same key show the same thing and share one render. */
  key: string;
  concerns(change: ConsoleChange): boolean;
  render(): Promise<Record<string, string>>;
}

/** A browser connected to /console/events. */
export interface LiveClient {
  send(event: string, data: string): void;
  /** False once the session behind it has ended: the stream is told and closed. */
  valid(): boolean;
  close(): void;
}

interface Group {
  view: LiveView;
  clients: Set<LiveClient>;
  last: Map<string, string>;
  timer: NodeJS.Timeout | null;
  rendering: Promise<void> | null;
  again: boolean;
}

export interface LiveHubOptions {
  /** Writes within this window are shown in one render (an evacuation writes in bursts). */
  coalesceMs?: number;
  /**
   * A re-read of every watched page while someone watches: catches what this process did
   * not write itself (the leader of an HA pair writes to etcd; time passes for gates).
   */
  fallbackMs?: number;
  /** A comment line keeps proxies from closing an idle stream, and expired sessions are closed. */
  heartbeatMs?: number;
  maxClients?: number;
}

/**
 * Server-sent updates of the console's pages. Nothing runs while nobody watches: the hub
 * listens to the journal and keeps its timers only while at least one browser is
 * connected. Each change re-renders only the pages it concerns, once per window, and
 * sends only the sections whose HTML changed.
 */
export class LiveHub {
  readonly #groups = new Map<string, Group>();
  readonly #coalesceMs: number;
  readonly #fallbackMs: number;
  readonly #heartbeatMs: number;
  readonly #maxClients: number;
  #clients = 0;
  #unsubscribe: (() => void) | null = null;
  #fallback: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly subscribe: (listener: (change: ConsoleChange) => void) => () => void,
    private readonly logger: Logger,
    opts: LiveHubOptions = {},
  ) {
    this.#coalesceMs = opts.coalesceMs ?? 250;
    this.#fallbackMs = opts.fallbackMs ?? 5000;
    this.#heartbeatMs = opts.heartbeatMs ?? 25_000;
    this.#maxClients = opts.maxClients ?? 100;
  }

  /** Browsers connected now. */
  get clients(): number {
    return this.#clients;
  }

  /** Whether the hub listens to the journal and holds timers (only while someone watches). */
  get active(): boolean {
    return this.#unsubscribe !== null;
  }

  /** Start sending `view` to `client`; returns the leave function, or null when the hub is full. */
  join(view: LiveView, client: LiveClient): (() => void) | null {
    if (this.#clients >= this.#maxClients) return null;
    if (!this.#unsubscribe) this.start();
    let group = this.#groups.get(view.key);
    const fresh = !group;
    if (!group) {
      group = { view, clients: new Set(), last: new Map(), timer: null, rendering: null, again: false };
      this.#groups.set(view.key, group);
    }
    group.clients.add(client);
    this.#clients += 1;
    // What this page shows now: the group's last render, or a first one.
    if (fresh) this.schedule(group, 0);
    else for (const [id, html] of group.last) client.send("section", JSON.stringify({ id, html }));
    const g = group;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      g.clients.delete(client);
      this.#clients -= 1;
      if (g.clients.size === 0) {
        if (g.timer) clearTimeout(g.timer);
        this.#groups.delete(g.view.key);
      }
      if (this.#clients === 0) this.stop();
    };
  }

  private start(): void {
    this.#unsubscribe = this.subscribe((change) => {
      for (const g of this.#groups.values()) if (g.view.concerns(change)) this.schedule(g, this.#coalesceMs);
    });
    this.#fallback = setInterval(() => {
      for (const g of this.#groups.values()) this.schedule(g, 0);
    }, this.#fallbackMs);
    this.#heartbeat = setInterval(() => this.beat(), this.#heartbeatMs);
    this.#fallback.unref();
    this.#heartbeat.unref();
  }

  private stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#fallback) clearInterval(this.#fallback);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#fallback = this.#heartbeat = null;
  }

  /** Close every stream (the server stops). */
  closeAll(): void {
    for (const g of [...this.#groups.values()]) for (const c of [...g.clients]) c.close();
  }

  private beat(): void {
    for (const g of this.#groups.values()) {
      for (const c of [...g.clients]) {
        if (c.valid()) c.send("ping", "{}");
        else {
          c.send("expired", "{}");
          c.close();
        }
      }
    }
  }

  private schedule(g: Group, delayMs: number): void {
    if (g.timer) return;
    g.timer = setTimeout(() => {
      g.timer = null;
      void this.flush(g);
    }, delayMs);
  }

  private async flush(g: Group): Promise<void> {
    if (g.rendering) {
      g.again = true;
      return;
    }
    g.rendering = (async () => {
      try {
        const sections = await g.view.render();
        for (const [id, html] of Object.entries(sections)) {
          if (g.last.get(id) === html) continue;
          g.last.set(id, html);
          const data = JSON.stringify({ id, html });
          for (const c of g.clients) c.send("section", data);
        }
      } catch (err) {
        this.logger.warn({ err: errorMessage(err), view: g.view.key }, "console: live update failed; next change or re-read tries again");
      }
    })();
    await g.rendering;
    g.rendering = null;
    if (g.again && this.#groups.get(g.view.key) === g) {
      g.again = false;
      this.schedule(g, this.#coalesceMs);
    }
  }
}
