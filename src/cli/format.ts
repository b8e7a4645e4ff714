import type { ApiKeyView } from '../core/api-keys/service.js';
import type { DomainView } from '../core/domains/service.js';
import type { QuotaLimits } from '../core/limits.js';
import type { LoginCheck } from '../core/mailboxes/login-check.js';
import type { ProtocolSwitch } from '../core/mailboxes/protocol-switches.js';
import type { QuotaPreview } from '../core/mailboxes/quota-preview.js';
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

/** `off (abuse report #123) until …`: a switch with what support said about it. */
function switchText(s: ProtocolSwitch): string {
  return `${s.enabled ? 'on' : 'off'}${s.reason === null ? '' : ` (${s.reason})`}${s.until === null ? '' : ` until ${s.until}`}`;
}

export function mailboxText(mailbox: MailboxView): string {
  const login = mailbox.lastLogin;
  const noted = (['imap', 'pop3'] as const).filter((p) => mailbox.protocolSwitches[p].reason !== null || mailbox.protocolSwitches[p].until !== null);
  return fields([
    ['address', mailbox.address],
    ['display name', mailbox.displayName ?? '-'],
    ['status', mailbox.status],
    ['protocols', protocols(mailbox.protocols)],
    ...noted.map((p): [string, string] => [p, switchText(mailbox.protocolSwitches[p])]),
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

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

function usageOf(used: number, limit: number | null, percent: number | null, size: (n: number | null) => string): string {
  return `${size(used)} of ${size(limit)}${percent === null ? '' : ` (${percent}%)`}`;
}

export function loginCheckText(check: LoginCheck): string {
  const { quota } = check;
  const login = (p: 'imap' | 'pop3') => {
    const last = check.protocols[p].lastLogin;
    return `${switchText(check.protocols[p])}; last login ${last === null ? 'never' : `${last.at}${last.ip === null ? '' : ` from ${last.ip}`}`}`;
  };
  const lockout = check.lockout.locked ? `locked until ${check.lockout.lockedUntil}` : `not locked (${check.lockout.recentFailures} recent failures)`;
  const summary = fields([
    ['address', check.address],
    ['can log in', `imap ${yesNo(check.canLogIn.imap)}, pop3 ${yesNo(check.canLogIn.pop3)}`],
    ['status', `${check.status}; domain ${check.domain.name} ${check.domain.status}`],
    ['imap', login('imap')],
    ['pop3', login('pop3')],
    ['lockout', lockout],
    ['storage', usageOf(quota.usage.storageBytes, quota.limits.storageBytes, quota.percentUsed.storageBytes, formatSize)],
    ['messages', usageOf(quota.usage.messages, quota.limits.messages, quota.percentUsed.messages, count)],
    ['new mail', quota.newMailRefused ? 'refused: the mailbox is full (logins still work)' : 'accepted'],
    ['password set', `${check.password.changedAt} (${check.password.ageDays} days ago)`],
  ]);
  const blockers = check.blockers.length === 0 ? 'Nothing blocks a login.\n' : check.blockers.map((b) => `! ${b.detail}\n`).join('');
  const clients = table(
    ['CLIENT ADDRESS', 'LOCKED UNTIL', 'RECENT FAILURES'],
    check.clientAddresses.map((c) => [c.address, c.lockedUntil ?? '-', c.recentFailures === null ? '-' : String(c.recentFailures)]),
    'no client addresses seen',
  );
  const failures = table(
    ['FAILED AT', 'PROTOCOL', 'CLIENT ADDRESS', 'REASON'],
    check.failedLogins.map((f) => [f.at, f.protocol, f.ip, f.reason]),
    'no failed logins',
  );
  return `${summary}\n${blockers}\n${clients}\n${failures}`;
}

export function quotaPreviewText(preview: QuotaPreview): string {
  const refusal = preview.rejection;
  return fields([
    ['quota', `${quota(preview.quota)} (now ${quota(preview.currentQuota)})`],
    ['storage', usageOf(preview.usage.storageBytes, preview.quota.storageBytes, preview.percentUsed.storageBytes, formatSize)],
    ['messages', usageOf(preview.usage.messages, preview.quota.messages, preview.percentUsed.messages, count)],
    ['new mail', preview.newMailRefused ? `refused (${preview.refusedBy.join(', ')} reached; the mail there stays)` : 'accepted'],
    ['domain allows', `at most ${quota(preview.domainMaxQuota)}`],
    ['change', refusal === null ? 'would be taken' : `would be refused: ${refusal.code}: ${refusal.message}`],
  ]);
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
