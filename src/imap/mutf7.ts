/** Modified UTF-7 (RFC 3501 §5.1.3): how IMAP4rev1 clients spell folder names outside ASCII. */

export function encodeFolderName(name: string): string {
  return name.replace(/&|[^\x20-\x7e]+/g, (run) => {
    if (run === '&') return '&-';
    const utf16 = Buffer.alloc(run.length * 2);
    for (let i = 0; i < run.length; i++) utf16.writeUInt16BE(run.charCodeAt(i), i * 2);
    return `&${utf16.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
  });
}

/** Names that are not valid modified UTF-7 are taken as they are (clients sending UTF-8). */
export function decodeFolderName(name: string): string {
  return name.replace(/&([^-]*)-/g, (whole, encoded: string) => {
    if (encoded === '') return '&';
    if (!/^[A-Za-z0-9+,]+$/.test(encoded)) return whole;
    const utf16 = Buffer.from(encoded.replace(/,/g, '/'), 'base64');
    let decoded = '';
    for (let i = 0; i + 1 < utf16.length; i += 2) decoded += String.fromCharCode(utf16.readUInt16BE(i));
    return decoded;
  });
}
