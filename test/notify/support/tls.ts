import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../../kit/temp-dirs.js";

export interface TestCert {
  keyPem: string;
  certPem: string;
  /** The certificate's file: a CA file that trusts it. */
  certFile: string;
}

/** A fresh self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
export function selfSignedCert(): TestCert {
  const dir = makeTempDir("notify-tls");
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    { stdio: "pipe" },
  );
  return { keyPem: readFileSync(keyFile, "utf8"), certPem: readFileSync(certFile, "utf8"), certFile };
}
