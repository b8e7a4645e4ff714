import type { ApiKeyView } from '../core/api-keys/service.js';
import type { DomainView } from '../core/domains/service.js';
import type { QuotaLimits } from '../core/limits.js';
import type { MailboxView } from '../core/mailboxes/service.js';
import type { Page } from '../core/pagination.js';
import type { DeliveryView, WebhookView } from '../core/webhooks/service.js';
import type { BatchAnswer } from '../api/mailbox-batch.js';

/** Stored text reaches a terminal: control characters would let it rewrite the screen. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

const SIZE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatSize(bytes: number | null): string {
  if (bytes === null) return 'unlimited';
  let unit = 0;
  while (unit < SIZE_UNITS.length - 1 && bytes >= 1024 ** (unit + 1)) unit++;
  const value = bytes / 1024 ** unit;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${SIZE_UNITS[unit]}`;
}

function count(n: number | null): string {
  return n === null ? 'unlimited' : String(n);
}

function quota(limits: QuotaLimits): string {
  return `${formatSize(limits.storageBytes)}, ${count(limits.messages)} messages`;
}

/** `label: value` lines with the values aligned. */
export function fields(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${clean(value)}\n`).join('');
}

/** An aligned table with a header row; `none` when there are no rows. */
export function table(headers: string[], rows: string[][], none: string): string {
  if (rows.length === 0) return `${none}\n`;
  const cells = [headers, ...rows.map((row) => row.map(clean))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  return cells.map((row) => `${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`).join('');
}

/** A page printed by --limit ends with how to get the next one. */
export function listText<T>(page: Page<T>, render: (items: T[]) => string): string {
  return render(page.items) + (page.nextCursor === null ? '' : `next page: --cursor ${page.nextCursor}\n`);
}

export function domainText(domain: DomainView): string {
  const max = domain.limits.maxMailboxes;
  return fields([
    ['name', domain.name],
    ...(domain.unicodeName === domain.name ? [] : [['unicode name', domain.unicodeName] as [string, string]]),
    ['status', domain.status],
    ['mailboxes', max === null ? String(domain.mailboxCount) : `${domain.mailboxCount} of at most ${max}`],
    ['default quota', quota(domain.defaults.quota)],
    ['largest quota', quota(domain.limits.maxQuota)],
    ['default protocols', protocols(domain.defaults.protocols)],
    ['default pop3 delete', domain.defaults.pop3DeleteMode],
    ['created', domain.createdAt],
    ['updated', domain.updatedAt],
  ]);
}

export function domainTable(domains: DomainView[]): string {
  return table(
    ['NAME', 'STATUS', 'MAILBOXES', 'DEFAULT QUOTA', 'LARGEST QUOTA'],
    domains.map((d) => [
      d.name,
      d.status,
      d.limits.maxMailboxes === null ? String(d.mailboxCount) : `${d.mailboxCount}/${d.limits.maxMailboxes}`,
      quota(d.defaults.quota),
      quota(d.limits.maxQuota),
    ]),
    'no domains',
  );
}

function protocols(p: { imap: boolean; pop3: boolean }): string {
  const on = [p.imap && 'imap', p.pop3 && 'pop3'].filter(Boolean);
  return on.length === 0 ? 'none' : on.join(', ');
}

export function mailboxText(mailbox: MailboxView): string {
  const login = mailbox.lastLogin;
  return fields([
    ['address', mailbox.address],
    ['display name', mailbox.displayName ?? '-'],
    ['status', mailbox.status],
    ['protocols', protocols(mailbox.protocols)],
    ['pop3 delete', mailbox.pop3DeleteMode],
    ['storage', `${formatSize(mailbox.usage.storageBytes)} of ${formatSize(mailbox.quota.storageBytes)}`],
    ['messages', `${mailbox.usage.messages} of ${count(mailbox.quota.messages)}`],
    ['last login', login === null ? 'never' : `${login.at} ${login.protocol}${login.ip === null ? '' : ` from ${login.ip}`}`],
    ['created', mailbox.createdAt],
    ['updated', mailbox.updatedAt],
  ]);
}

export function mailboxTable(mailboxes: MailboxView[]): string {
  return table(
    ['ADDRESS', 'STATUS', 'PROTOCOLS', 'STORAGE', 'MESSAGES', 'DISPLAY NAME'],
    mailboxes.map((m) => [
      m.address,
      m.status,
      protocols(m.protocols),
      `${formatSize(m.usage.storageBytes)} / ${formatSize(m.quota.storageBytes)}`,
      `${m.usage.messages} / ${count(m.quota.messages)}`,
      m.displayName ?? '',
    ]),
    'no mailboxes',
  );
}

export function apiKeyText(key: ApiKeyView & { token?: string }): string {
  return fields([
    ['id', key.id],
    ['name', key.name],
    ['role', key.role],
    ['domains', key.domains?.join(', ') ?? 'all'],
    ['created', key.createdAt],
    ...(key.token === undefined ? [] : [['token', `${key.token}  (shown only now: store it safely)`] as [string, string]]),
  ]);
}

export function apiKeyTable(keys: ApiKeyView[]): string {
  return table(
    ['ID', 'NAME', 'ROLE', 'DOMAINS', 'LAST USED'],
    keys.map((k) => [k.id, k.name, k.role, k.domains?.join(',') ?? 'all', k.lastUsedAt ?? 'never']),
    'no API keys',
  );
}

export function webhookText(webhook: WebhookView & { secret?: string }): string {
  return fields([
    ['id', webhook.id],
    ['url', webhook.url],
    ['events', webhook.events?.join(', ') ?? 'all'],
    ['domains', webhook.domains?.join(', ') ?? 'all'],
    ['created', webhook.createdAt],
    ...(webhook.secret === undefined ? [] : [['secret', `${webhook.secret}  (shown only now: store it safely)`] as [string, string]]),
  ]);
}

export function webhookTable(webhooks: WebhookView[]): string {
  return table(
    ['ID', 'URL', 'EVENTS', 'DOMAINS'],
    webhooks.map((w) => [w.id, w.url, w.events?.join(',') ?? 'all', w.domains?.join(',') ?? 'all']),
    'no webhooks',
  );
}

export function deliveryTable(deliveries: DeliveryView[]): string {
  return table(
    ['EVENT', 'TYPE', 'MAILBOX', 'STATUS', 'ATTEMPTS', 'LAST ANSWER', 'NEXT ATTEMPT'],
    deliveries.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      return [
        d.event.id,
        d.event.type,
        d.event.mailbox,
        d.status,
        String(d.attempts.length),
        last === undefined ? '-' : (last.error ?? String(last.statusCode)),
        d.nextAttemptAt ?? '-',
      ];
    }),
    'no deliveries',
  );
}

export function batchText(answer: BatchAnswer, dryRun: boolean): string {
  const rows = table(
    ['#', 'OP', 'ADDRESS', 'RESULT'],
    answer.results.map((r) => [
      String(r.index),
      r.op ?? '?',
      r.address ?? '?',
      r.problem === undefined ? r.status : `failed: ${String(r.problem.code)}: ${String(r.problem.detail)}`,
    ]),
    'no operations',
  );
  const counts = Object.entries(answer.counts).map(([status, n]) => `${n} ${status}`).join(', ');
  return `${rows}${counts}${dryRun ? ' (dry run: nothing was changed)' : ''}\n`;
}
