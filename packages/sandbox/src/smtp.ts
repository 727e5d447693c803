import type { AddressInfo } from "node:net";
import { simpleParser, type AddressObject } from "mailparser";
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from "smtp-server";

/**
 * A real SMTP server on loopback that keeps what it receives, for the tests and the demo:
 * STARTTLS (its own or a given certificate), implicit TLS (`secure`), AUTH PLAIN/LOGIN
 * against one user, injected 4xx/5xx answers to the DATA command (`failNext`), and
 * messages taken whose final answer never comes (`holdNext`: the relay has the message, the
 * sender never learns it).
 */

export interface CaughtMessage {
  /** The From header as text, e.g. `lifeboat <lifeboat@cloud.example>`. */
  from: string;
  /** Addresses of the To header. */
  to: string[];
  subject: string;
  text: string;
  html: string | null;
  headers: Record<string, string>;
  envelope: { mailFrom: string; rcptTo: string[] };
  /** The authenticated user and the SASL method used, if any. */
  user?: string;
  authMethod?: string;
  /** The session was encrypted (implicit TLS or STARTTLS). */
  secure: boolean;
  raw: string;
}

export interface SmtpCatcherOptions {
  /** Require AUTH with these credentials (else AUTH is not offered). */
  username?: string;
  password?: string;
  /** SASL methods offered, in order (the client picks the first it knows). Default PLAIN, LOGIN. */
  authMethods?: ("PLAIN" | "LOGIN")[];
  /** Implicit TLS from the first byte (SMTPS). Default false: plain with STARTTLS offered. */
  secure?: boolean;
  /** Offer STARTTLS on a plain listener. Default true. */
  starttls?: boolean;
  /** PEM key and certificate (default: smtp-server's built-in self-signed pair). */
  key?: string | Buffer;
  cert?: string | Buffer;
  host?: string;
  /** Listen port (default 0: chosen by the OS). */
  port?: number;
}

export interface SmtpCatcher {
  readonly host: string;
  readonly port: number;
  readonly messages: CaughtMessage[];
  /** DATA commands answered with an injected error so far. */
  readonly rejected: number;
  /** AUTH attempts refused. */
  readonly authFailures: number;
  /** Resolve once `n` messages were accepted; reject after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<CaughtMessage[]>;
  /** Answer the next `n` DATA commands with `code` (e.g. 451 or 550) instead of accepting. */
  failNext(n: number, code: number, message?: string): void;
  /** Keep the next `n` messages (they count in `messages`) but never send their `250`. */
  holdNext(n: number): void;
  /** Messages kept whose answer was withheld so far. */
  readonly held: number;
  close(): Promise<void>;
}

interface SmtpError extends Error {
  responseCode: number;
}

function smtpError(code: number, message: string): SmtpError {
  return Object.assign(new Error(message), { responseCode: code });
}

function addressList(v: AddressObject | AddressObject[] | undefined): string[] {
  if (!v) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((o) => o.value.map((a) => a.address ?? "")).filter(Boolean);
}

function headerRecord(headers: Map<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers) {
    if (typeof v === "string") out[k] = v;
    else if (v && typeof v === "object" && "text" in v && typeof v.text === "string") out[k] = v.text;
    else if (v && typeof v === "object" && "value" in v && typeof v.value === "string") out[k] = v.value;
  }
  return out;
}

export async function startSmtpCatcher(opts: SmtpCatcherOptions = {}): Promise<SmtpCatcher> {
  const host = opts.host ?? "127.0.0.1";
  const messages: CaughtMessage[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const authBySession = new Map<string, string>();
  let failures: { left: number; code: number; message: string } | null = null;
  let rejected = 0;
  let authFailures = 0;
  let holds = 0;
  let held = 0;
  const requireAuth = opts.username !== undefined;

  const server = new SMTPServer({
    secure: opts.secure ?? false,
    ...(opts.key !== undefined && opts.cert !== undefined ? { key: opts.key, cert: opts.cert } : {}),
    disabledCommands: [...(requireAuth ? [] : ["AUTH"]), ...(opts.starttls === false ? ["STARTTLS"] : [])],
    authMethods: opts.authMethods ?? ["PLAIN", "LOGIN"],
    authOptional: !requireAuth,
    // Lets tests of `security: none` authenticate; real servers refuse AUTH in clear.
    allowInsecureAuth: true,
    closeTimeout: 500,
    logger: false,
    onAuth(auth, session, callback) {
      if (auth.username === opts.username && auth.password === opts.password) {
        authBySession.set(session.id, auth.method);
        callback(null, { user: auth.username });
        return;
      }
      authFailures++;
      callback(smtpError(535, "5.7.8 Authentication credentials invalid"));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (failures && failures.left > 0) {
          failures.left--;
          rejected++;
          callback(smtpError(failures.code, failures.message));
          return;
        }
        const raw = Buffer.concat(chunks);
        // textAsHtml is never read here, and linkifying every message's text cost the sandbox
        // more CPU in a storm's mails than the SMTP exchange itself.
        simpleParser(raw, { skipTextToHtml: true })
          .then((mail) => {
            messages.push(caught(raw, mail, session));
            if (holds > 0) {
              holds--;
              held++;
            } else callback();
            for (const w of waiters.filter((x) => messages.length >= x.n)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve();
            }
          })
          .catch((err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
      });
    },
  });

  function caught(raw: Buffer, mail: Awaited<ReturnType<typeof simpleParser>>, session: SMTPServerSession): CaughtMessage {
    const mailFrom = session.envelope.mailFrom;
    const authMethod = authBySession.get(session.id);
    const user: unknown = session.user;
    return {
      from: mail.from?.text ?? "",
      to: addressList(mail.to),
      subject: mail.subject ?? "",
      text: mail.text ?? "",
      html: typeof mail.html === "string" ? mail.html : null,
      headers: headerRecord(mail.headers),
      envelope: { mailFrom: mailFrom ? mailFrom.address : "", rcptTo: session.envelope.rcptTo.map((a: SMTPServerAddress) => a.address) },
      ...(typeof user === "string" ? { user } : {}),
      ...(authMethod !== undefined ? { authMethod } : {}),
      secure: session.secure,
      raw: raw.toString("utf8"),
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  // Connection-level errors (a client dropping mid-TLS) are expected in tests; keep the server up.
  server.on("error", () => undefined);
  const port = (server.server.address() as AddressInfo).port;

  return {
    host,
    port,
    messages,
    get rejected() {
      return rejected;
    },
    get authFailures() {
      return authFailures;
    },
    waitFor(n, timeoutMs = 10_000) {
      if (messages.length >= n) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const waiter = { n, resolve: () => (clearTimeout(timer), resolve(messages)) };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`SMTP catcher: ${messages.length} message(s) after ${timeoutMs} ms, expected ${n}`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    failNext(n, code, message = code >= 500 ? "5.1.1 rejected by the catcher" : "4.3.0 try again later") {
      failures = { left: n, code, message };
    },
    holdNext(n) {
      holds = n;
    },
    get held() {
      return held;
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
