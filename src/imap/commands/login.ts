import { type LoginAccount, LoginError } from '../../core/auth/login.js';
import { DomainError, ForbiddenError } from '../../core/errors.js';
import { givenUser } from '../../log.js';
import { expectCount, text } from '../arguments.js';
import { type ImapCommand, NOT_AUTHENTICATED } from '../command.js';
import type { ImapSession } from '../session.js';

/** Shared by LOGIN and AUTHENTICATE: the core checks, the session starts, failures are counted. */
export async function logIn(session: ImapSession, address: string, password: string): Promise<string> {
  let account: LoginAccount;
  try {
    account = await session.services.login.login({
      address,
      password,
      protocol: 'imap',
      ip: session.connection.remoteAddress,
    });
    await session.loggedIn(account);
  } catch (error) {
    if (error instanceof LoginError) {
      session.authFailures += 1;
      if (session.authFailures >= session.context.limits.maxAuthFailures) {
        setImmediate(() => session.bye('Too many failed logins'));
      }
    }
    // A refusal (wrong password, locked out, over the connection limit); faults are logged by dispatch.
    if (error instanceof DomainError) session.log.info({ user: givenUser(address), reason: error.code }, 'login failed');
    throw error;
  }
  session.log.info({ user: account.address, tls: session.connection.secure }, 'logged in');
  return `[CAPABILITY ${session.capabilities().join(' ')}] Logged in`;
}

export const login: ImapCommand = {
  name: 'LOGIN',
  states: NOT_AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 2);
    const address = text(args[0], 'a user name');
    if (!session.mayLogin) {
      await session.services.login.plaintextRefused({ address, protocol: 'imap', ip: session.connection.remoteAddress });
      throw privacyRequired();
    }
    return logIn(session, address, text(args[1], 'a password'));
  },
};

/** LOGINDISABLED (RFC 3501 §6.2.3): credentials only over TLS. */
export const privacyRequired = () => new ForbiddenError('privacy_required', 'Use STARTTLS before sending a password');
