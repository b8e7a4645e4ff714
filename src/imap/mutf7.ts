import { InvalidError } from '../core/errors.js';

/** Modified UTF-7 (RFC 3501 §5.1.3): how IMAP4rev1 clients spell folder names outside ASCII. */

export function encodeFolderName(name: string): string {
  return name.replace(/&|[^\x20-\x7e]+/g, (run) => {
    if (run === '&') return '&-';
    const utf16 = Buffer.alloc(run.length * 2);
    for (let i = 0; i < run.length; i++) utf16.writeUInt16BE(run.charCodeAt(i), i * 2);
    return `&${utf16.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
  });
}

/**
 * Refuses what is not modified UTF-7 (a bare '&', raw 8-bit): taking it as it stands would list
 * the folder under another name than the client created, and sync clients then lose track of it.
 */
export function decodeFolderName(name: string): string {
  const decoded = name.replace(/&([^-]*)-/g, (_whole, encoded: string) => {
    if (encoded === '') return '&';
    const utf16 = Buffer.from(encoded.replace(/,/g, '/'), 'base64');
    let text = '';
    for (let i = 0; i + 1 < utf16.length; i += 2) text += String.fromCharCode(utf16.readUInt16BE(i));
    return text;
  });
  if (encodeFolderName(decoded) !== name) {
    throw new InvalidError('invalid_folder_name', `'${name}' is not a modified UTF-7 folder name (RFC 3501 §5.1.3)`, {
      field: 'folder',
    });
  }
  return decoded;
}
