import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';

/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a load balancer in front
 * tells us, before anything else on the connection, which client it is relaying.
 */

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ');
// Version 1 lines are at most 107 bytes, CRLF included (spec §2.1).
const V1_MAX = 107;
// Addresses take 36 bytes at most; the rest is TLVs, which we skip. 536 is what HAProxy reads.
const V2_MAX = 536;

/** What a complete header says: the client's address (null: LOCAL or UNKNOWN, keep the peer's) and its length. */
export interface ProxyHeader {
  address: string | null;
  length: number;
}

function v1(buffer: Buffer): ProxyHeader | null {
  const end = buffer.indexOf('\r\n');
  if (end === -1) {
    if (buffer.length >= V1_MAX) throw new Error('PROXY v1 line too long');
    return null;
  }
  if (end + 2 > V1_MAX) throw new Error('PROXY v1 line too long');
  const fields = buffer.subarray(0, end).toString('latin1').split(' ');
  if (fields[1] === 'UNKNOWN') return { address: null, length: end + 2 };
  const [, family, source, destination, sourcePort, destinationPort] = fields;
  const isFamily = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : null;
  const isPort = (port: string | undefined) => port !== undefined && /^(0|[1-9]\d{0,4})$/.test(port) && Number(port) <= 65535;
  if (
    fields.length !== 6 ||
    isFamily === null ||
    !isFamily(source ?? '') ||
    !isFamily(destination ?? '') ||
    !isPort(sourcePort) ||
    !isPort(destinationPort)
  ) {
    throw new Error('malformed PROXY v1 line');
  }
  return { address: source ?? null, length: end + 2 };
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Compressed the canonical way by a round trip through the URL parser.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function v2(buffer: Buffer): ProxyHeader | null {
  if (buffer.length < 16) return null;
  const versionCommand = buffer[12] ?? 0;
  if (versionCommand >> 4 !== 2) throw new Error('unsupported PROXY version');
  const length = 16 + buffer.readUInt16BE(14);
  if (length > V2_MAX) throw new Error('PROXY v2 header too long');
  if (buffer.length < length) return null;
  const command = versionCommand & 0x0f;
  // LOCAL: the balancer's own connection (a health check); the peer address stands.
  if (command === 0) return { address: null, length };
  if (command !== 1) throw new Error('unknown PROXY v2 command');
  const familyProtocol = buffer[13] ?? 0;
  const body = buffer.subarray(16, length);
  // TCP over IPv4 or IPv6; anything else (UDP, UNIX, UNSPEC) says nothing we can use.
  if (familyProtocol === 0x11 && body.length >= 12) return { address: [...body.subarray(0, 4)].join('.'), length };
  if (familyProtocol === 0x21 && body.length >= 36) return { address: ipv6(body.subarray(0, 16)), length };
  if (familyProtocol === 0x00) return { address: null, length };
  throw new Error('unsupported PROXY v2 address family');
}

/** The header at the start of `buffer`; null while more bytes are needed. Throws on anything else. */
export function parseProxyHeader(buffer: Buffer): ProxyHeader | null {
  if (buffer[0] === V2_SIGNATURE[0]) {
    const signature = buffer.subarray(0, V2_SIGNATURE.length);
    if (!signature.equals(V2_SIGNATURE.subarray(0, signature.length))) throw new Error('no PROXY header');
    return signature.length < V2_SIGNATURE.length ? null : v2(buffer);
  }
  const prefix = buffer.subarray(0, V1_PREFIX.length);
  if (!prefix.equals(V1_PREFIX.subarray(0, prefix.length))) throw new Error('no PROXY header');
  return prefix.length < V1_PREFIX.length ? null : v1(buffer);
}

/** Strips the IPv4-mapped prefix a dual-stack socket reports. */
export function plainAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** Addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`) a header is taken from. */
export function trustList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

export function isTrusted(list: BlockList, address: string): boolean {
  const plain = plainAddress(address);
  return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
}

/**
 * Reads the header off a fresh socket: the client's address (or the peer's, for LOCAL/UNKNOWN).
 * Whatever came after the header is put back for the next reader (a TLS handshake, a greeting's
 * answer). Rejects on a bad header, an early close or when `timeoutMs` passes.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const finish = (error: Error | null, address?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (error) reject(error);
      else resolve(address ?? plainAddress(socket.remoteAddress ?? 'unknown'));
    };
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      let header: ProxyHeader | null;
      try {
        header = parseProxyHeader(buffer);
      } catch (error) {
        return finish(error as Error);
      }
      if (header === null) return;
      finish(null, header.address === null ? undefined : plainAddress(header.address));
      const rest = buffer.subarray(header.length);
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = () => finish(new Error('closed before the PROXY header'));
    const timer = setTimeout(() => finish(new Error('no PROXY header in time')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
