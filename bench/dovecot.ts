/**
 * What the benches share: free ports, waiting for a listener, stopping a child, and Debian's
 * Dovecot started as an unprivileged instance with its own config, state and maildir storage
 * under a temporary directory (as the invoking user, or as `nobody` when the bench runs as root).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, chown, link, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const DOVECOT = '/usr/sbin/dovecot';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function waitForPort(port: number, child: ChildProcess, name: string, log: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}; see ${log}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
      setTimeout(() => socket.destroy(), 1000);
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} did not start listening on ${port}; see ${log}`);
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export interface RunAs {
  name: string;
  group: string;
  uid: number;
  gid: number;
  /** The bench runs as root and Dovecot as `nobody`: files made for it must be given to it. */
  root: boolean;
}

/** Who Dovecot runs as: the invoking user, or `nobody` when the bench runs as root. */
export function dovecotUser(): RunAs {
  if (process.getuid?.() === 0) return { name: 'nobody', group: 'nogroup', uid: 65534, gid: 65534, root: true };
  const info = userInfo();
  const group = execFileSync('id', ['-gn']).toString().trim();
  return { name: info.username, group, uid: info.uid, gid: info.gid, root: false };
}

/** Gives a tree to the Dovecot user when the bench runs as root; otherwise it is ours already. */
export async function giveTo(user: RunAs, path: string): Promise<void> {
  if (!user.root) return;
  await chown(path, user.uid, user.gid);
  if ((await stat(path)).isDirectory()) {
    for (const entry of await readdir(path)) await giveTo(user, join(path, entry));
  }
}

export type DovecotProtocol = 'lmtp' | 'pop3' | 'imap';

export interface DovecotOptions {
  /** The protocols served, each on a free port of 127.0.0.1 (e.g. `imap` and `lmtp` to deliver to IMAP clients). */
  protocols: DovecotProtocol[];
  /** passdb { } block(s); default: any password (LMTP needs none). */
  passdb?: string;
  /** More settings, appended to the config. */
  extra?: string;
}

export interface Dovecot {
  /** The port of the first protocol asked for. */
  port: number;
  ports: Partial<Record<DovecotProtocol, number>>;
  pid: number;
  /** e.g. 2.3.19.1 */
  version: string;
  user: RunAs;
  /** The instance's directory: config, log, run, state. */
  dir: string;
  /** Maildirs live at `${mailDir}/<domain>/<local part>`. */
  mailDir: string;
  log: string;
  stop(): Promise<void>;
}

/** The inet listener of one protocol; login services of an unprivileged master cannot chroot. */
function listener(protocol: DovecotProtocol, port: number): string {
  if (protocol === 'lmtp') return `service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = ${port}\n  }\n}\n`;
  const secure = protocol === 'pop3' ? 'pop3s' : 'imaps';
  return (
    `service ${protocol}-login {\n  inet_listener ${protocol} {\n    address = 127.0.0.1\n    port = ${port}\n  }\n` +
    `  inet_listener ${secure} {\n    port = 0\n  }\n  chroot =\n}\n`
  );
}

/** The instance's directories and config, written but not started: callers may add files first. */
export async function prepareDovecot(work: string, options: DovecotOptions) {
  const user = dovecotUser();
  const dir = join(work, `dovecot-${options.protocols.join('-')}`);
  for (const sub of ['run', 'state', 'mail']) await mkdir(join(dir, sub), { recursive: true });
  const ports: Partial<Record<DovecotProtocol, number>> = {};
  for (const protocol of options.protocols) ports[protocol] = await freePort();
  const port = ports[options.protocols[0]!]!;
  const log = join(dir, 'dovecot.log');
  const conf = join(dir, 'dovecot.conf');
  const listeners = options.protocols.map((protocol) => listener(protocol, ports[protocol]!)).join('');
  await writeFile(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${log}
protocols = ${options.protocols.join(' ')}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
default_internal_user = ${user.name}
default_internal_group = ${user.group}
default_login_user = ${user.name}
first_valid_uid = ${user.uid}
first_valid_gid = ${user.gid}
mail_location = maildir:${dir}/mail/%d/%n
${
  options.passdb ??
  `passdb {
  driver = static
  args = nopassword=y
}`
}
userdb {
  driver = static
  args = uid=${user.uid} gid=${user.gid} home=${dir}/mail/%d/%n
}
${listeners}
# An unprivileged master cannot chroot.
service anvil {
  chroot =
}
${options.extra ?? ''}
`,
  );
  return {
    user,
    dir,
    port,
    ports,
    log,
    conf,
    mailDir: join(dir, 'mail'),
    /** Starts the instance once everything it reads is in place. */
    async start(): Promise<Dovecot> {
      if (user.root) {
        await chmod(work, 0o755);
        await giveTo(user, dir);
      }
      const version = execFileSync(DOVECOT, ['--version']).toString().trim();
      const child = spawn(DOVECOT, ['-F', '-c', conf], {
        stdio: 'ignore',
        ...(user.root ? { uid: user.uid, gid: user.gid } : {}),
      });
      await waitForPort(port, child, 'dovecot', log);
      return {
        port,
        ports,
        pid: child.pid!,
        version: version.split(' ')[0]!,
        user,
        dir,
        mailDir: join(dir, 'mail'),
        log,
        stop: () => stop(child),
      };
    },
  };
}

/**
 * Puts one message into maildirs as Dovecot's own delivery leaves it: LF line ends, S= (file)
 * and W= (CRLF) sizes in the name. Written once and hard-linked into the other boxes, as Dovecot
 * does for one message to several recipients. `n` makes the name unique within a box.
 */
export async function storeInMaildirs(boxes: readonly string[], raw: Buffer, n: number): Promise<void> {
  const lf = Buffer.from(raw.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
  const file = `${1796000000 + n}.M${n}P${process.pid}.bench,S=${lf.length},W=${raw.length}:2,`;
  const [first, ...others] = boxes;
  if (first === undefined) return;
  await writeFile(join(first, 'cur', file), lf);
  for (const box of others) await link(join(first, 'cur', file), join(box, 'cur', file));
}

/** Creates the cur, new and tmp directories of a maildir; answers its path. */
export async function makeMaildir(mailDir: string, address: string): Promise<string> {
  const [local, domain] = address.split('@') as [string, string];
  const box = join(mailDir, domain, local);
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(box, sub), { recursive: true });
  return box;
}

export async function startDovecot(work: string, options: DovecotOptions): Promise<Dovecot> {
  return (await prepareDovecot(work, options)).start();
}
