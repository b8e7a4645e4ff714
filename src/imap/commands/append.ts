import { listItems } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName, UTF8_ACCEPT } from '../folder-names.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';
import { compactSet } from '../sequence.js';
import { intoFolder, isSelected } from './copy.js';
import { storableFlags } from './store.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DATE_TIME = /^([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/;

/** An IMAP date-time (RFC 3501 §9: `"17-Jul-1996 02:44:25 -0700"`) as an instant. */
export function parseDateTime(value: string): Date {
  const match = DATE_TIME.exec(value);
  const month = match ? MONTHS.indexOf(match[2]!.toLowerCase()) : -1;
  if (!match || month === -1) throw new ImapSyntaxError(`'${value.slice(0, 40)}' is not a date-time such as "17-Jul-1996 02:44:25 -0700"`);
  const [day, year, hour, minute, second, zoneHours, zoneMinutes] = [1, 3, 4, 5, 6, 8, 9].map((i) => Number(match[i]!.trim()));
  const local = Date.UTC(year!, month, day!, hour!, minute!, second!);
  const check = new Date(Date.UTC(year!, month, day!));
  if (day === 0 || check.getUTCDate() !== day || hour! > 23 || minute! > 59 || second! > 60 || zoneHours! > 23 || zoneMinutes! > 59) {
    throw new ImapSyntaxError(`'${value}' is not a valid date-time`);
  }
  const offset = (match[7] === '-' ? -1 : 1) * (zoneHours! * 60 + zoneMinutes!) * 60_000;
  return new Date(local - offset);
}

interface Appended {
  flags: string[];
  internalDate?: Date;
  raw: Buffer;
}

/**
 * The message of APPEND: a literal, or after ENABLE UTF8=ACCEPT one in `UTF8 (~{n}…)`, which says
 * its header may hold UTF-8 (RFC 6855 §4). It is stored as sent either way.
 */
function messageLiteral(session: ImapSession, args: Token[], at: number): { message: Token | undefined; next: number } {
  const first = args[at];
  if (first?.kind !== 'atom' || first.value.toUpperCase() !== 'UTF8') return { message: first, next: at + 1 };
  if (!session.enabled.has(UTF8_ACCEPT)) throw new ImapSyntaxError('APPEND UTF8 needs ENABLE UTF8=ACCEPT first');
  const inside = listItems(args[at + 1], 'the message in parentheses after UTF8');
  if (inside.length !== 1) throw new ImapSyntaxError('Expected one message literal in UTF8 (…)');
  return { message: inside[0], next: at + 2 };
}

/**
 * APPEND folder 1*([flags] [date-time] message) (RFC 3502 MULTIAPPEND): a date-time is always
 * quoted and a message always a literal (RFC 3501 §9), which tells the optional parts apart.
 */
function parseAppend(session: ImapSession, args: Token[]): { folder: string; messages: Appended[] } {
  if (args.length < 2) throw new ImapSyntaxError('Expected a folder and a message');
  const folder = folderName(session, args[0]);
  const messages: Appended[] = [];
  for (let i = 1; i < args.length; ) {
    let flags: string[] = [];
    let internalDate: Date | undefined;
    if (args[i]?.kind === 'list') flags = storableFlags(listItems(args[i++]));
    const date = args[i];
    if (date?.kind === 'string' && !date.literal) {
      internalDate = parseDateTime(date.value.toString('latin1'));
      i += 1;
    }
    const { message, next } = messageLiteral(session, args, i);
    i = next;
    if (message?.kind !== 'string' || !message.literal) {
      throw new ImapSyntaxError('Expected the message as a literal, after its flags and date-time');
    }
    messages.push({ flags, internalDate, raw: message.value });
  }
  return { folder, messages };
}

/**
 * APPEND (RFC 3501 §6.3.11, UIDPLUS APPENDUID, MULTIAPPEND): stored as given, counted against
 * the quota, acknowledged after commit; several messages are stored all or none. A missing folder
 * answers [TRYCREATE]; too big, [LIMIT].
 */
export const append: ImapCommand = {
  name: 'APPEND',
  states: AUTHENTICATED,
  async run(session, args, { tag }) {
    const { folder, messages } = parseAppend(session, args);
    if (messages.some(({ raw }) => raw.length === 0)) {
      session.write(`${tag} NO [CANNOT] An empty message cannot be stored\r\n`);
      return null;
    }
    const { accountId } = session.account!;
    const [first] = messages;
    const stored = await intoFolder(session, tag, folder, async () => {
      if (messages.length > 1) return session.services.mail.appendMany(accountId, folder, messages);
      const { uid, uidValidity } = await session.services.mail.append(accountId, folder, first!.raw, {
        flags: first!.flags,
        internalDate: first!.internalDate,
      });
      return { uidValidity, uids: [uid] };
    });
    if (stored === null) return null;
    // A message appended to the selected folder shows as EXISTS at this command's sync.
    if (isSelected(session, folder)) session.folderChanged = true;
    return `[APPENDUID ${stored.uidValidity} ${compactSet(stored.uids)}] APPEND completed`;
  },
};
