import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import selfsigned from 'selfsigned';

export interface TlsFiles {
  certPath: string | null;
  keyPath: string | null;
  /** Where a self-signed pair is made and kept when no files are configured. */
  dataDir: string;
}

/**
 * The configured certificate, or a self-signed one made once and kept in the data directory so
 * clients that pinned it on first use keep trusting it across restarts.
 */
export async function loadTlsContext({ certPath, keyPath, dataDir }: TlsFiles): Promise<SecureContext> {
  if (certPath !== null && keyPath !== null) {
    const [cert, key] = await Promise.all([readFile(certPath), readFile(keyPath)]);
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  }
  const dir = join(dataDir, 'tls');
  const files = { cert: join(dir, 'self-signed-cert.pem'), key: join(dir, 'self-signed-key.pem') };
  try {
    const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
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
    return createSecureContext({ cert: pems.cert, key: pems.private, minVersion: 'TLSv1.2' });
  }
}
