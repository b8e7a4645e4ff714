/**
 * The distinct messages bench/seed.ts fans out over a whole database: deterministic for a given
 * seed, with the mix of a hosting customer's mail. Sizes are log-normal (median near 8 KB with
 * the headers a delivered message carries: Return-Path, Received, DKIM-Signature,
 * Authentication-Results), a few percent carry 100 KB – 2 MB attachments; the kinds are plain
 * ASCII text, 8-bit UTF-8 text with encoded-word headers, multipart/alternative (text and
 * HTML), multipart/mixed with attachments, and mailing-list threads (List-* headers,
 * In-Reply-To and a growing References chain).
 */

/** mulberry32: small, fast and good enough to make mail that is the same at every run. */
export function randomSource(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (below: number) => Math.floor(next() * below),
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!,
    /** exp(N(ln median, sigma)). */
    logNormal(median: number, sigma: number): number {
      const z = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
      return median * Math.exp(sigma * z);
    },
  };
}

type Random = ReturnType<typeof randomSource>;

export type TemplateKind = 'plain' | 'utf8' | 'alternative' | 'attachment' | 'list';

export interface Template {
  kind: TemplateKind;
  raw: Buffer;
}

const FIRST = ['anna', 'ben', 'clara', 'david', 'emma', 'felix', 'greta', 'hugo', 'ida', 'jonas', 'karin', 'lukas', 'mia', 'noah', 'olga', 'paul', 'rosa', 'sven', 'tina', 'ulf'] as const;
const LAST = ['schmidt', 'meyer', 'weber', 'wagner', 'becker', 'hoffmann', 'koch', 'richter', 'klein', 'wolf', 'neumann', 'braun', 'zimmermann', 'krause', 'hartmann', 'lange'] as const;
/** Local parts of the seeded mailboxes are `first.last<n>`: an API address-prefix search by first name finds 1/20 of them. */
export const FIRST_NAMES = FIRST;
export const LAST_NAMES = LAST;

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were ' +
  'invoice meeting project release server backup quarter report budget customer contract delivery update schedule ' +
  'please thanks attached review draft final version account hosting domain mailbox password support ticket order ' +
  'shipping payment reminder newsletter offer discount event webinar agenda minutes notes proposal estimate'
).split(' ');
const UTF8_SENTENCES = [
  'Grüße aus München, die Überweisung für Änderungen ist unterwegs.',
  'Très bien, à bientôt ! Le reçu est joint à ce message, déjà payé.',
  'Le rendez-vous est confirmé pour jeudi à 14 h 30, salle « Étoile ».',
  'お世話になっております。明日の会議の資料を送付いたします。',
  'ご確認のほど、よろしくお願いいたします。',
  'Спасибо за заказ! Доставка ожидается в пятницу.',
  'Ευχαριστούμε για την πληρωμή σας.',
  'Zażółć gęślą jaźń — płatność została przyjęta.',
  'Das Büro ist über die Feiertage geschlossen 🎄 — frohes Fest! 🎉',
  '¿Podemos mover la reunión al miércoles? Gracias 👍',
];
const SENDER_DOMAINS = ['mail.example.org', 'newsletter.shop.example', 'corp.example.net', 'lists.example.org', 'billing.example.com', 'gmail.example'];
const LISTS = ['rust-dev', 'postgres-general', 'debian-user', 'nginx', 'openbsd-misc', 'kernel-janitors'];
const ATTACHMENTS = [
  { type: 'application/pdf', ext: 'pdf' },
  { type: 'image/jpeg', ext: 'jpg' },
  { type: 'image/png', ext: 'png' },
  { type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', ext: 'docx' },
  { type: 'application/zip', ext: 'zip' },
];

const pad = (n: number) => String(n).padStart(2, '0');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in UTC. */
function rfc5322Date(date: Date): string {
  return `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

/** An RFC 2047 B encoded-word, for a header holding non-ASCII text. */
const encodedWord = (text: string) => `=?UTF-8?B?${Buffer.from(text).toString('base64')}?=`;

/** Random base64-looking text of `length` characters, for signatures and IDs. */
function base64Text(random: Random, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[random.int(64)];
  return text;
}

/** Folds a long header value at 76 columns with a tab, as MTAs write DKIM signatures. */
const fold = (text: string) => text.match(/.{1,76}/g)!.join('\r\n\t');

/** ASCII prose of about `size` octets, wrapped at 72 columns, CRLF line ends. */
function prose(random: Random, size: number): string {
  const lines: string[] = [];
  let total = 0;
  let line = '';
  while (total + line.length < size) {
    const word = random.pick(WORDS);
    if (line.length + word.length + 1 > 72) {
      lines.push(line);
      total += line.length + 2;
      line = '';
      if (random.next() < 0.12) lines.push(''); // paragraphs
    }
    line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return `${lines.join('\r\n')}\r\n`;
}

/** UTF-8 prose of about `size` octets. */
function utf8Prose(random: Random, size: number): string {
  const lines: string[] = [];
  let total = 0;
  while (total < size) {
    const line = random.pick(UTF8_SENTENCES);
    lines.push(line);
    total += Buffer.byteLength(line) + 2;
  }
  return `${lines.join('\r\n')}\r\n`;
}

function html(random: Random, text: string): string {
  const paragraphs = text.split('\r\n\r\n').map((p) => `<p style="margin:0 0 12px 0;font-family:Arial,sans-serif">${p}</p>`);
  const style = '<style>body{font-family:Arial,sans-serif;color:#333}td{padding:4px 8px}.footer{color:#999;font-size:11px}</style>';
  const table = `<table width="600" cellpadding="0" cellspacing="0" border="0">\r\n<tr><td>${paragraphs.join('\r\n')}</td></tr>\r\n</table>`;
  return `<!DOCTYPE html>\r\n<html><head><meta charset="utf-8">${style}</head>\r\n<body>\r\n${table}\r\n<div class="footer">Ref ${base64Text(random, 12)}</div>\r\n</body></html>\r\n`;
}

/** `bytes` of random data as base64 in 76-column lines: an attachment that does not compress. */
function attachmentBody(random: Random, bytes: number): string {
  const words = new Uint32Array(Math.ceil(bytes / 4));
  for (let i = 0; i < words.length; i++) words[i] = random.next() * 4294967296;
  const text = Buffer.from(words.buffer, 0, bytes).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return `${lines.join('\r\n')}\r\n`;
}

interface Header {
  from: string;
  to: string;
  subject: string;
  date: Date;
  messageId: string;
  extra: string[];
  contentType: string;
  transferEncoding?: string;
}

/** The trace and authentication fields an MTA and LMTP leave on delivered mail, then the message's own. */
function headerBlock(random: Random, h: Header): string {
  const senderDomain = h.from.slice(h.from.lastIndexOf('@') + 1).replace('>', '');
  const hops = 2 + random.int(3);
  const received: string[] = [];
  for (let i = 0; i < hops; i++) {
    const when = rfc5322Date(new Date(h.date.getTime() + (hops - i) * 1000));
    received.push(
      `Received: from mx${i}.${senderDomain} (mx${i}.${senderDomain} [198.51.100.${random.int(250)}])\r\n` +
        `\tby mx${i + 1}.mailroom.example (Postfix) with ESMTPS id ${base64Text(random, 10).replace(/[+/]/g, 'X')}\r\n` +
        `\tfor <${h.to.replace(/.*</, '').replace('>', '')}>; ${when}`,
    );
  }
  const fields = [
    `Return-Path: <bounce-${random.int(1e6)}@${senderDomain}>`,
    ...received,
    `DKIM-Signature: ${fold(`v=1; a=rsa-sha256; c=relaxed/relaxed; d=${senderDomain}; s=s${random.int(3)}; h=from:to:subject:date:message-id:mime-version; bh=${base64Text(random, 44)}; b=${base64Text(random, 344)}`)}`,
    `Authentication-Results: mx1.mailroom.example;\r\n\tdkim=pass header.d=${senderDomain};\r\n\tspf=pass smtp.mailfrom=${senderDomain};\r\n\tdmarc=pass header.from=${senderDomain}`,
    `From: ${h.from}`,
    `To: ${h.to}`,
    ...(random.next() < 0.3 ? [`Cc: ${random.pick(FIRST)} <${random.pick(FIRST)}@${random.pick(SENDER_DOMAINS)}>`] : []),
    `Subject: ${h.subject}`,
    `Date: ${rfc5322Date(h.date)}`,
    `Message-ID: ${h.messageId}`,
    ...h.extra,
    'MIME-Version: 1.0',
    `Content-Type: ${h.contentType}`,
    ...(h.transferEncoding ? [`Content-Transfer-Encoding: ${h.transferEncoding}`] : []),
  ];
  return `${fields.join('\r\n')}\r\n\r\n`;
}

const person = (random: Random, domain = random.pick(SENDER_DOMAINS)) => {
  const first = random.pick(FIRST);
  const last = random.pick(LAST);
  return { name: `${first[0]!.toUpperCase()}${first.slice(1)} ${last[0]!.toUpperCase()}${last.slice(1)}`, address: `${first}.${last}@${domain}` };
};

/**
 * `count` distinct messages. `dates` spans the time they were sent. Mailing-list messages come in
 * threads of 2–12, each reply carrying In-Reply-To and the References of the thread so far.
 */
export function makeTemplates(count: number, seed: number, dates: { from: Date; to: Date }): Template[] {
  const random = randomSource(seed);
  const templates: Template[] = [];
  const span = dates.to.getTime() - dates.from.getTime();
  const when = () => new Date(dates.from.getTime() + random.next() * span);
  // Text body size: log-normal around 3.5 KB; with the ~2 KB of header, the median message is near 8 KB.
  const bodySize = () => Math.max(200, Math.round(random.logNormal(3500, 1.0)));
  const id = (n: number, domain: string) => `<${n}.${base64Text(random, 16).replace(/[+/]/g, 'x')}@${domain}>`;
  while (templates.length < count) {
    const n = templates.length;
    // A thread adds 7 messages on average: 2.5% of rolls make 15% of the messages list mail.
    const roll = random.next();
    const from = person(random);
    const to = person(random, 'mailroom.example');
    const base = { from: `"${from.name}" <${from.address}>`, to: `${to.name} <${to.address}>`, date: when(), messageId: id(n, from.address.split('@')[1]!) };
    if (roll < 0.30) {
      const subject = `${random.pick(WORDS)} ${random.pick(WORDS)} ${random.pick(WORDS)} #${n}`;
      const head = headerBlock(random, { ...base, subject, extra: [], contentType: 'text/plain; charset=us-ascii; format=flowed', transferEncoding: '7bit' });
      templates.push({ kind: 'plain', raw: Buffer.from(head + prose(random, bodySize())) });
    } else if (roll < 0.44) {
      const subject = encodedWord(`${random.pick(UTF8_SENTENCES).slice(0, 30)} #${n}`);
      const head = headerBlock(random, {
        ...base,
        from: `${encodedWord(`${from.name} Müller`)} <${from.address}>`,
        subject,
        extra: ['User-Agent: Mozilla Thunderbird'],
        contentType: 'text/plain; charset=utf-8',
        transferEncoding: '8bit',
      });
      templates.push({ kind: 'utf8', raw: Buffer.from(head + utf8Prose(random, bodySize())) });
    } else if (roll < 0.88) {
      const boundary = `----=_Part_${n}_${random.int(1e9)}`;
      const text = prose(random, bodySize());
      const subject = `Your ${random.pick(WORDS)} ${random.pick(WORDS)} update #${n}`;
      const head = headerBlock(random, {
        ...base,
        subject,
        extra: ['X-Mailer: Mailchimp Mailer', `List-Unsubscribe: <https://${from.address.split('@')[1]}/u/${random.int(1e9)}>`],
        contentType: `multipart/alternative; boundary="${boundary}"`,
      });
      const body =
        `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${text}` +
        `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${html(random, text)}` +
        `--${boundary}--\r\n`;
      templates.push({ kind: 'alternative', raw: Buffer.from(head + body) });
    } else if (roll < 0.975) {
      const boundary = `=_mixed_${n}_${random.int(1e9)}`;
      // Half small (20–80 KB, a scan or a logo), half large (100 KB – 2 MB, log-uniform).
      const files = 1 + (random.next() < 0.25 ? 1 : 0);
      let parts = `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${prose(random, Math.round(bodySize() / 3))}`;
      for (let f = 0; f < files; f++) {
        const large = random.next() < 0.5;
        const bytes = Math.round(large ? 100_000 * Math.pow(20, random.next()) : 20_000 + random.next() * 60_000);
        const file = random.pick(ATTACHMENTS);
        const name = `${random.pick(WORDS)}-${n}-${f}.${file.ext}`;
        parts +=
          `--${boundary}\r\nContent-Type: ${file.type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\n` +
          `Content-Transfer-Encoding: base64\r\n\r\n${attachmentBody(random, Math.floor(bytes * 0.75))}`;
      }
      const subject = `${random.pick(['Invoice', 'Scan', 'Photos', 'Contract', 'Report'])} ${random.pick(WORDS)} #${n}`;
      const head = headerBlock(random, { ...base, subject, extra: [], contentType: `multipart/mixed; boundary="${boundary}"` });
      templates.push({ kind: 'attachment', raw: Buffer.from(`${head}This is a multi-part message in MIME format.\r\n\r\n${parts}--${boundary}--\r\n`) });
    } else {
      // A thread on a mailing list: each message replies to the one before.
      const list = random.pick(LISTS);
      const listDomain = 'lists.example.org';
      const topic = `${random.pick(WORDS)} ${random.pick(WORDS)} ${random.pick(WORDS)}`;
      const length = 2 + random.int(11);
      const references: string[] = [];
      let date = when();
      for (let i = 0; i < length && templates.length < count; i++) {
        const poster = person(random);
        const messageId = id(templates.length, poster.address.split('@')[1]!);
        const extra = [
          `List-Id: ${list} discussion <${list}.${listDomain}>`,
          `List-Unsubscribe: <mailto:${list}-request@${listDomain}?subject=unsubscribe>`,
          `List-Archive: <https://${listDomain}/archives/${list}/>`,
          `List-Post: <mailto:${list}@${listDomain}>`,
          'Precedence: list',
          ...(references.length > 0
            ? [`In-Reply-To: ${references.at(-1)}`, `References: ${references.join('\r\n ')}`]
            : []),
        ];
        const quoted = i === 0 ? '' : `\r\nOn ${rfc5322Date(date)}, someone wrote:\r\n> ${prose(random, 400).split('\r\n').join('\r\n> ')}\r\n`;
        const head = headerBlock(random, {
          from: `${poster.name} <${poster.address}>`,
          to: `${list}@${listDomain}`,
          subject: `${i === 0 ? '' : 'Re: '}[${list}] ${topic}`,
          date,
          messageId,
          extra,
          contentType: 'text/plain; charset=utf-8',
          transferEncoding: '8bit',
        });
        templates.push({ kind: 'list', raw: Buffer.from(head + prose(random, Math.round(bodySize() / 2)) + quoted) });
        references.push(messageId);
        date = new Date(date.getTime() + random.int(86_400_000));
      }
    }
  }
  return templates;
}
