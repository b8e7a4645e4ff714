import { type LoginAccount, LoginError } from '../core/auth/login.js';
import { loggable } from '../core/errors.js';
import { INBOX } from '../core/mailstore/folders.js';
import { givenUser } from '../log.js';
import { ReadAhead } from './read-ahead.js';
import type { Maildrop, Pop3Session } from './session.js';
import { encodeMessage } from './transfer.js';

type State = Pop3Session['state'];

export interface Pop3Command {
  states: readonly State[];
  run(session: Pop3Session, argument: string): Promise<void> | void;
}

const AUTHORIZATION: readonly State[] = ['authorization'];
const TRANSACTION: readonly State[] = ['transaction'];
/** Dovecot's words for the same refusal, which clients already show their users. */
const PLAINTEXT_REFUSED = '[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections';

function capabilities(session: Pop3Session): string[] {
  const before = session.state === 'authorization';
  return [
    'TOP',
    'UIDL',
    // Not offered where credentials would be refused (as IMAP's LOGINDISABLED, RFC 2595 §4).
    ...(before && session.mayLogin ? ['USER', 'SASL PLAIN'] : []),
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    ...(before && session.context.tls && !session.connection.secure ? ['STLS'] : []),
    'IMPLEMENTATION Mailroom',
  ];
}

/** `user`: the name the client gave, if any; `reason`: why it was refused, for the log. */
async function failLogin(session: Pop3Session, text: string, failure: { user?: string; reason: string }): Promise<void> {
  session.log.info({ user: failure.user === undefined ? undefined : givenUser(failure.user), reason: failure.reason }, 'login failed');
  session.authFailures += 1;
  if (session.authFailures >= session.context.maxAuthFailures) {
    session.err(`${text}; too many failures, closing`);
    session.close('Too many failed logins');
    return;
  }
  session.err(text);
}

/** Checks credentials, takes the maildrop lock and lists the INBOX as this session will see it. */
async function logIn(session: Pop3Session, address: string, password: string): Promise<void> {
  const { context } = session;
  let account: LoginAccount;
  try {
    account = await context.login.login({ address, password, protocol: 'pop3', ip: session.connection.remoteAddress });
  } catch (error) {
    if (error instanceof LoginError) {
      // Unknown address and wrong password read the same; suspension and POP3 being off are told.
      // A lockout is temporary (RFC 3206 SYS/TEMP, as Dovecot answers): the client keeps the password.
      return failLogin(session, `[${error.refusal === 'locked_out' ? 'SYS/TEMP' : 'AUTH'}] ${error.message}`, { user: address, reason: error.refusal });
    }
    throw error;
  }
  // Without the lock another session could change the maildrop under this one's listing.
  const unlock = await context.lockMaildrop(account.accountId, () => session.end('The mailbox lock was lost; log in again'));
  if (!unlock) {
    session.log.info({ user: account.address, reason: 'in_use' }, 'login failed');
    session.err('[IN-USE] Another POP3 session has this mailbox open');
    return;
  }
  const release = [unlock];
  let maildrop: Maildrop;
  try {
    const inbox = await context.mail.folders.get(account.accountId, INBOX);
    const stored = await context.mail.list(account.accountId, inbox.id);
    const messages = stored
      .filter((m) => !m.pop3Hidden && !m.flags.includes('\\Deleted'))
      .map((m) => ({ uid: m.uid, key: m.key, size: m.crlfSize, deleted: false }));
    const reader = new ReadAhead(context.mail, account.accountId, inbox.id, messages);
    const { connection } = session;
    release.unshift(
      await context.registerSession({ accountId: account.accountId, protocol: 'pop3', remoteIp: connection.remoteAddress, tls: connection.secure }),
    );
    release.unshift(
      await context.subscribe(
        (change) => {
          if (change.accountId !== account.accountId) return;
          if (change.kind === 'account') {
            if (change.reason === 'sessions') session.close('Session ended by the administrator');
            else void recheck(session, account);
          } else if (change.kind === 'folders' || change.folderId === inbox.id) {
            reader.forget();
          }
        },
        () => {
          reader.forget();
          void recheck(session, account);
        },
      ),
    );
    maildrop = { account, inboxId: inbox.id, messages, reader, release };
  } catch (error) {
    for (const undo of release) await undo().catch(() => {});
    throw error;
  }
  session.loggedIn(maildrop);
  session.log.info({ user: account.address, tls: session.connection.secure }, 'logged in');
  session.ok(`Logged in; ${maildrop.messages.length} messages`);
}

/** A password change, suspension, POP3 being switched off or deletion ends the session. */
async function recheck(session: Pop3Session, account: LoginAccount): Promise<void> {
  const current = await session.context.login.current(account.accountId).catch(() => undefined);
  if (current === undefined) return;
  if (current === null) session.close('The mailbox was deleted');
  else if (current.status !== 'active') session.close('The mailbox is suspended');
  else if (!current.pop3Enabled) session.close('POP3 is disabled for this mailbox');
  else if (current.passwordVersion !== account.passwordVersion) session.close('The password was changed');
}

function decodePlain(response: string): { address: string; password: string } | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(response)) return null;
  const [authzid, authcid, password] = Buffer.from(response, 'base64').toString('utf8').split('\0');
  if (authcid === undefined || password === undefined || (authzid !== '' && authzid !== authcid)) return null;
  return { address: authcid, password };
}

export const COMMANDS: Record<string, Pop3Command> = {
  CAPA: {
    states: ['authorization', 'transaction'],
    run: (session) => session.multiline('Capability list follows', capabilities(session)),
  },

  QUIT: {
    states: ['authorization', 'transaction'],
    async run(session) {
      const maildrop = session.maildrop;
      if (!maildrop) {
        session.ok('Bye');
        session.close('QUIT');
        return;
      }
      session.state = 'update';
      const uids = maildrop.messages.filter((m) => m.deleted).map((m) => m.uid);
      const { mail } = session.context;
      const { accountId, pop3DeleteMode } = maildrop.account;
      let removed = true;
      try {
        if (uids.length > 0) {
          if (pop3DeleteMode === 'remove') await mail.remove(accountId, maildrop.inboxId, uids);
          else if (pop3DeleteMode === 'hide') await mail.hideFromPop3(accountId, maildrop.inboxId, uids);
          else await mail.move(accountId, maildrop.inboxId, uids, 'Trash');
        }
      } catch (error) {
        session.log.warn({ err: loggable(error), messages: uids.length }, 'pop3 update failed');
        removed = false;
      }
      // The lock goes before the answer: a client that logs in again at once must find it free.
      await session.release();
      if (removed) session.ok(`Bye; ${uids.length} messages deleted`);
      else session.err('[SYS/TEMP] The deleted messages could not be removed; they are still there');
      session.close('QUIT');
    },
  },

  NOOP: { states: TRANSACTION, run: (session) => session.ok('') },

  STLS: {
    states: AUTHORIZATION,
    async run(session) {
      const { tls } = session.context;
      if (!tls || session.connection.secure) {
        session.err(session.connection.secure ? 'TLS is already active' : 'TLS is not available here');
        return;
      }
      session.ok('Begin TLS negotiation');
      await session.connection.upgradeToTls(tls.context).catch(() => session.connection.destroy());
      // Whatever was said before TLS is forgotten (RFC 2595 §4).
      session.user = null;
    },
  },

  USER: {
    states: AUTHORIZATION,
    async run(session, argument) {
      if (!session.mayLogin) {
        if (argument.length > 0) {
          await session.context.login.plaintextRefused({ address: argument, protocol: 'pop3', ip: session.connection.remoteAddress });
        }
        return session.err(PLAINTEXT_REFUSED);
      }
      if (argument.length === 0) return session.err('USER needs a mailbox address');
      session.user = argument;
      session.ok('Send PASS');
    },
  },

  PASS: {
    states: AUTHORIZATION,
    async run(session, argument) {
      if (!session.mayLogin) return session.err(PLAINTEXT_REFUSED);
      if (session.user === null) return session.err('Send USER first');
      const user = session.user;
      session.user = null;
      await logIn(session, user, argument);
    },
  },

  AUTH: {
    states: AUTHORIZATION,
    async run(session, argument) {
      const [mechanism = '', initial] = argument.split(' ');
      if (mechanism === '') return session.multiline('Mechanisms follow', session.mayLogin ? ['PLAIN'] : []);
      if (!session.mayLogin) return session.err(PLAINTEXT_REFUSED);
      if (mechanism.toUpperCase() !== 'PLAIN') return session.err('Only SASL PLAIN is offered');
      let response = initial;
      if (response === undefined) {
        session.connection.write('+ \r\n');
        const line = await session.connection.readLine();
        if (typeof line !== 'string') return session.err('Authentication cancelled');
        response = line;
      }
      if (response === '*') return session.err('Authentication cancelled');
      const credentials = response === '=' ? null : decodePlain(response);
      if (!credentials) return failLogin(session, '[AUTH] Malformed SASL PLAIN response', { reason: 'malformed_sasl_response' });
      await logIn(session, credentials.address, credentials.password);
    },
  },

  STAT: {
    states: TRANSACTION,
    run(session) {
      const live = session.maildrop!.messages.filter((m) => !m.deleted);
      session.ok(`${live.length} ${live.reduce((sum, m) => sum + m.size, 0)}`);
    },
  },

  LIST: {
    states: TRANSACTION,
    run(session, argument) {
      if (argument !== '') {
        const message = session.message(argument);
        if (!message) return session.err('No such message');
        return session.ok(`${argument} ${message.size}`);
      }
      const messages = session.maildrop!.messages;
      const lines = messages.flatMap((m, i) => (m.deleted ? [] : [`${i + 1} ${m.size}`]));
      session.multiline(`${lines.length} messages`, lines);
    },
  },

  UIDL: {
    states: TRANSACTION,
    run(session, argument) {
      if (argument !== '') {
        const message = session.message(argument);
        if (!message) return session.err('No such message');
        return session.ok(`${argument} ${message.key}`);
      }
      const messages = session.maildrop!.messages;
      session.multiline('Unique-id listing follows', messages.flatMap((m, i) => (m.deleted ? [] : [`${i + 1} ${m.key}`])));
    },
  },

  RETR: {
    states: TRANSACTION,
    async run(session, argument) {
      const message = session.message(argument);
      if (!message) return session.err('No such message');
      const raw = await session.maildrop!.reader.retrieve(Number(argument) - 1);
      session.connection.write(`+OK ${message.size} octets\r\n`);
      await session.sendMessage(encodeMessage(raw));
    },
  },

  TOP: {
    states: TRANSACTION,
    async run(session, argument) {
      const [number = '', lines = ''] = argument.split(' ');
      const message = session.message(number);
      if (!message) return session.err('No such message');
      if (!/^\d{1,9}$/.test(lines)) return session.err('TOP needs a message number and a line count');
      const raw = await session.maildrop!.reader.peek(Number(number) - 1);
      session.connection.write('+OK Top of message follows\r\n');
      await session.sendMessage(encodeMessage(raw, Number(lines)));
    },
  },

  DELE: {
    states: TRANSACTION,
    run(session, argument) {
      const message = session.message(argument);
      if (!message) return session.err('No such message');
      message.deleted = true;
      session.ok(`Message ${argument} deleted`);
    },
  },

  RSET: {
    states: TRANSACTION,
    run(session) {
      for (const message of session.maildrop!.messages) message.deleted = false;
      session.ok(`${session.maildrop!.messages.length} messages`);
    },
  },
};
