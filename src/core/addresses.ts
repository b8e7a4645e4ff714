import { domainToASCII, domainToUnicode } from 'node:url';
import { InvalidError } from './errors.js';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// RFC 5321 dot-atom: atext runs separated by single dots.
const DOT_ATOM = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** IDNA-normalises a domain name to lowercase ASCII (punycode), or throws `invalid_domain`. */
export function normalizeDomain(input: string): string {
  const trimmed = input.trim().replace(/\.$/, '');
  const ascii = domainToASCII(trimmed).toLowerCase();
  const labels = ascii.split('.');
  if (
    // domainToASCII reads a URL host: it percent-decodes, drops tabs and stops at / ? # \, so
    // 'ex%61mple.com/x' would pass as example.com. ASCII may only be letters, digits, '-' and '.'.
    /[^a-z0-9.\-\u0080-\u{10ffff}]/iu.test(trimmed) ||
    ascii.length === 0 ||
    ascii.length > 253 ||
    labels.length < 2 ||
    !labels.every((label) => LABEL.test(label)) ||
    /^\d+$/.test(labels[labels.length - 1]!)
  ) {
    throw new InvalidError('invalid_domain', `'${input}' is not a valid domain name`, { field: 'domain' });
  }
  return ascii;
}

export function unicodeDomain(ascii: string): string {
  return domainToUnicode(ascii);
}

export interface Address {
  /** `local@domain`, lowercase with an ASCII domain: the one spelling used for lookups. */
  address: string;
  localPart: string;
  domain: string;
}

/**
 * Parses a mailbox address case-insensitively; the domain may be given in Unicode, and white
 * space around the whole address (a pasted value) is ignored.
 */
export function normalizeAddress(input: string): Address {
  const trimmed = input.trim();
  const at = trimmed.lastIndexOf('@');
  const localPart = trimmed.slice(0, at).toLowerCase();
  if (at < 1 || localPart.length > 64 || !DOT_ATOM.test(localPart)) {
    throw new InvalidError('invalid_address', `'${input}' is not a valid mailbox address`, { field: 'address' });
  }
  let domain: string;
  try {
    domain = normalizeDomain(trimmed.slice(at + 1));
  } catch {
    throw new InvalidError('invalid_address', `'${input}' is not a valid mailbox address`, { field: 'address' });
  }
  const address = `${localPart}@${domain}`;
  if (address.length > 254) {
    throw new InvalidError('invalid_address', `'${input}' is longer than 254 characters`, { field: 'address' });
  }
  return { address, localPart, domain };
}
