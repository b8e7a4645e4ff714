import { ImapSyntaxError } from '../parser/tokens.js';
import { atom, expectCount } from '../arguments.js';
import { type ImapCommand, NOT_AUTHENTICATED } from '../command.js';
import { logIn, privacyRequired } from './login.js';
import { LoginError } from '../../core/auth/login.js';

function decodePlain(response: string): { address: string; password: string } {
  const malformed = () => new LoginError('invalid_credentials', 'Malformed SASL PLAIN response');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(response)) throw malformed();
  const [authzid, authcid, password] = Buffer.from(response, 'base64').toString('utf8').split('\0');
  if (authcid === undefined || password === undefined || (authzid !== '' && authzid !== authcid)) throw malformed();
  return { address: authcid, password };
}

/** AUTHENTICATE PLAIN (RFC 4616), with an initial response (SASL-IR, RFC 4959) or after `+`. */
export const authenticate: ImapCommand = {
  name: 'AUTHENTICATE',
  states: NOT_AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 1, 2);
    if (atom(args[0], 'a SASL mechanism').toUpperCase() !== 'PLAIN') {
      throw new ImapSyntaxError('Only the PLAIN mechanism is offered');
    }
    if (!session.mayLogin) throw privacyRequired();
    let response = args[1] === undefined ? undefined : atom(args[1], 'a base64 response');
    if (response === undefined) {
      session.write('+ \r\n');
      const line = await session.connection.readLine();
      if (typeof line !== 'string') throw new ImapSyntaxError('Authentication exchange failed');
      response = line;
    }
    if (response === '*') throw new ImapSyntaxError('Authentication cancelled');
    const credentials = decodePlain(response === '=' ? '' : response);
    return logIn(session, credentials.address, credentials.password);
  },
};
