import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import selfsigned from 'selfsigned';
import { loggable } from '../core/errors.js';

export interface TlsFiles {
  certPath: string | null;
  keyPath: string | null;
  /** Where a self-signed pair is made and kept when no files are configured. */
  dataDir: string;
}

export interface TlsLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** The certificate new TLS connections get (implicit TLS, STARTTLS, STLS); sessions already in TLS keep theirs. */
export interface TlsCertificate {
  readonly context: SecureContext;
  /**
   * Reads the files again (SIGHUP after a renewal). A pair that cannot be used (a file missing or
   * garbled, a key not matching the certificate) is logged and the one in use is kept.
   */
  reload(): Promise<void>;
}

/** TLS 1.0 and 1.1 are refused (RFC 8996). */
const MIN_VERSION = 'TLSv1.2';

/** A context from a PEM pair, checked first: an empty file or a foreign key would otherwise only fail at handshakes. */
function contextFor(cert: Buffer | string, key: Buffer | string): { context: SecureContext; certificate: X509Certificate } {
  const certificate = new X509Certificate(cert);
  if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
  return { context: createSecureContext({ cert, key, minVersion: MIN_VERSION }), certificate };
}

/** What identifies a certificate in the log; nothing of the key. */
function described(certificate: X509Certificate) {
  return { subject: certificate.subject, validTo: certificate.validTo, fingerprint: certificate.fingerprint256 };
}

/**
 * The configured pair, or a self-signed one made once and kept in the data directory so clients
 * that pinned it on first use keep trusting it across restarts.
 */
async function read({ certPath, keyPath, dataDir }: TlsFiles, log: TlsLog) {
  if (certPath !== null && keyPath !== null) {
    const [cert, key] = await Promise.all([readFile(certPath), readFile(keyPath)]);
    return contextFor(cert, key);
  }
  const dir = join(dataDir, 'tls');
  const files = { cert: join(dir, 'self-signed-cert.pem'), key: join(dir, 'self-signed-key.pem') };
  try {
    const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
    return contextFor(cert, key);
  } catch {
    const pems = selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      days: 3650,
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    await mkdir(dir, { recursive: true });
    await writeFile(files.key, pems.private, { mode: 0o600 });
    await writeFile(files.cert, pems.cert);
    log.warn(
      { cert: files.cert },
      'no TLS certificate configured (MAILROOM_TLS_CERT, MAILROOM_TLS_KEY): made a self-signed one, which mail clients will not trust',
    );
    return contextFor(pems.cert, pems.private);
  }
}

/** Loads the pair new TLS connections get; a start with unusable files fails. */
export async function loadTlsCertificate(files: TlsFiles, log: TlsLog): Promise<TlsCertificate> {
  let { context } = await read(files, log);
  return {
    get context() {
      return context;
    },
    async reload() {
      try {
        const loaded = await read(files, log);
        context = loaded.context;
        log.info(described(loaded.certificate), 'TLS certificate reloaded');
      } catch (error) {
        log.error({ err: loggable(error), cert: files.certPath, key: files.keyPath }, 'TLS certificate reload failed; the previous one stays in use');
      }
    },
  };
}
