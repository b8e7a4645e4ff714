import { expectCount, listItems, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { decodeFolderName } from '../mutf7.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
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

/** APPEND folder [flags] [date-time] message: the optional arguments told apart by their kind. */
function parseAppend(args: Token[]): { folder: string; flags: string[]; internalDate?: Date; raw: Buffer } {
  expectCount(args, 2, 4);
  const folder = decodeFolderName(text(args[0], 'a folder name'));
  const message = args.at(-1)!;
  if (message.kind !== 'string') throw new ImapSyntaxError('Expected the message as a literal');
  const middle = args.slice(1, -1);
  let flags: string[] = [];
  let internalDate: Date | undefined;
  if (middle[0]?.kind === 'list') flags = storableFlags(listItems(middle.shift()));
  if (middle.length > 0) {
    const date = middle.shift()!;
    if (date.kind !== 'string') throw new ImapSyntaxError('Expected a quoted date-time');
    internalDate = parseDateTime(date.value.toString('latin1'));
  }
  if (middle.length > 0) throw new ImapSyntaxError('Expected flags, a date-time and the message, in that order');
  return { folder, flags, internalDate, raw: message.value };
}

/**
 * APPEND (RFC 3501 §6.3.11, UIDPLUS APPENDUID): stored as given, counted against the quota,
 * acknowledged after commit. A missing folder answers [TRYCREATE]; too big, [LIMIT].
 */
export const append: ImapCommand = {
  name: 'APPEND',
  states: AUTHENTICATED,
  async run(session, args, { tag }) {
    const { folder, flags, internalDate, raw } = parseAppend(args);
    if (raw.length === 0) {
      session.write(`${tag} NO [CANNOT] An empty message cannot be stored\r\n`);
      return null;
    }
    const stored = await intoFolder(session, tag, folder, () =>
      session.services.mail.append(session.account!.accountId, folder, raw, { flags, internalDate }),
    );
    if (stored === null) return null;
    // A message appended to the selected folder shows as EXISTS at this command's sync.
    if (isSelected(session, folder)) session.folderChanged = true;
    return `[APPENDUID ${stored.uidValidity} ${stored.uid}] APPEND completed`;
  },
};
