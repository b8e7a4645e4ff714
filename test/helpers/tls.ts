import { connect as connectTcp, type Socket } from 'node:net';
import { connect } from 'node:tls';

/**
 * Tries a TLS 1.1 handshake on the port (or on `socket`, a connection just told to start TLS);
 * answers the error the client got, or how it connected.
 */
export function tls11Handshake(port: number, socket?: Socket): Promise<string> {
  return new Promise((resolve) => {
    const client = connect({
      port,
      host: '127.0.0.1',
      socket,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      // OpenSSL 3 does not offer TLS 1.1 at its default security level.
      ciphers: 'DEFAULT@SECLEVEL=0',
      rejectUnauthorized: false,
    });
    client.once('secureConnect', () => {
      resolve(`connected with ${client.getProtocol()}`);
      client.destroy();
    });
    client.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** A plain connection that has sent `command` (STARTTLS, STLS) and read the greeting and the answer, ready for a handshake. */
export async function toldToStartTls(port: number, command: string): Promise<Socket> {
  const socket = connectTcp(port, '127.0.0.1');
  const next = () => new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  await next();
  socket.write(`${command}\r\n`);
  const answer = await next();
  if (!/^(\+OK|\S+ OK)/.test(answer)) throw new Error(`${command}: ${answer}`);
  return socket;
}

/** The error the server closes a TLS 1.1 client with (protocol_version alert). */
export const REFUSED_TLS11 = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';

/**
 * Starts a TLS handshake and never finishes it (on the implicit-TLS port, or after `command`):
 * true once the server has closed the connection, false if it still holds it after 10 s.
 */
export async function handshakeCutOff(port: number, command?: string): Promise<boolean> {
  const socket = command === undefined ? connectTcp(port, '127.0.0.1') : await toldToStartTls(port, command);
  socket.on('error', () => {});
  // The first bytes of a ClientHello record.
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00]));
  const closed = await Promise.race([
    new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref()),
  ]);
  socket.destroy();
  return closed;
}
