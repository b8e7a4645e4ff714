import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);

const DOMAIN = 'preview.test';
const ADDRESS = `ann@${DOMAIN}`;
const PATH = `/v1/mailboxes/${ADDRESS}/quota:preview`;
const MAX_QUOTA = { storageBytes: 100_000, messages: 100 };
for (const [url, body] of [
  ['/v1/domains', { name: DOMAIN, limits: { maxQuota: MAX_QUOTA } }],
  ['/v1/mailboxes', { address: ADDRESS, password: PASSWORD, quota: { storageBytes: 50_000, messages: 50 } }],
] as const) {
  const created = await admin.post(url, body);
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}
const delivered = await api.services.mail.deliver(Buffer.from(`Subject: one\r\n\r\n${'x'.repeat(1000)}\r\n`), [ADDRESS]);
await api.services.mail.deliver(Buffer.from(`Subject: two\r\n\r\n${'y'.repeat(1000)}\r\n`), [ADDRESS]);
if (!delivered[0]!.delivered) throw new Error('setup: delivery failed');
const usage = (await admin.get(`/v1/mailboxes/${ADDRESS}`)).json().usage as { storageBytes: number; messages: number };

/** The mailbox and its audit trail, to show a preview changes neither. */
async function state() {
  const read = await admin.get(`/v1/mailboxes/${ADDRESS}`);
  return { etag: read.headers.etag, body: read.body, events: (await auditEvents(admin, `target=${ADDRESS}`)).items.length };
}
const unchanged = await state();

t.test('a larger quota: room for mail, the percentage used, nothing refused', async (t) => {
  const response = await support.post(PATH, { storageBytes: 80_000 });
  t.equal(response.statusCode, 200, response.body);
  t.strictSame(response.json(), {
    quota: { storageBytes: 80_000, messages: 50 },
    currentQuota: { storageBytes: 50_000, messages: 50 },
    usage,
    percentUsed: { storageBytes: Math.round((usage.storageBytes * 1000) / 80_000) / 10, messages: 4 },
    newMailRefused: false,
    refusedBy: [],
    domainMaxQuota: MAX_QUOTA,
    rejection: null,
  });
});

t.test('a quota at or below the usage refuses new mail (the mail there stays)', async (t) => {
  const below = (await support.post(PATH, { storageBytes: usage.storageBytes - 1 })).json();
  t.match(below, { newMailRefused: true, refusedBy: ['storageBytes'], rejection: null });
  t.equal(below.percentUsed.storageBytes, 100, 'to one decimal');
  t.equal((await support.post(PATH, { storageBytes: usage.storageBytes / 2 })).json().percentUsed.storageBytes, 200);
  const full = (await support.post(PATH, { messages: 2 })).json();
  t.match(full, { quota: { storageBytes: 50_000, messages: 2 }, percentUsed: { messages: 100 }, newMailRefused: true, refusedBy: ['messages'] });
  const both = (await support.post(PATH, { storageBytes: 0, messages: 0 })).json();
  t.match(both, { percentUsed: { storageBytes: 100, messages: 100 }, refusedBy: ['storageBytes', 'messages'] }, 'a limit of 0 is full');
  const unlimitedMessages = (await admin.post(PATH, { messages: null })).json();
  t.match(unlimitedMessages, { quota: { messages: null }, percentUsed: { messages: null } });
});

t.test('above the domain’s largest quota: the very problem PATCH would answer', async (t) => {
  for (const candidate of [{ storageBytes: 200_000 }, { messages: null }, { storageBytes: null, messages: 10 }]) {
    const preview = await support.post(PATH, candidate);
    t.equal(preview.statusCode, 200);
    const { rejection } = preview.json();
    const patched = await admin.patch(`/v1/mailboxes/${ADDRESS}`, { quota: candidate });
    const problem = assertProblem(t, patched, 422, 'quota_above_domain_limit');
    const { instance: _i, requestId: _r, ...same } = problem;
    t.match(rejection, { ...same, instance: `/v1/mailboxes/${ADDRESS}/quota:preview`, requestId: preview.headers['x-request-id'] }, JSON.stringify(candidate));
    t.same(rejection.maxQuota, MAX_QUOTA);
  }
  const unchangedQuota = (await support.post(PATH, {})).json();
  t.match(unchangedQuota, { quota: { storageBytes: 50_000, messages: 50 }, rejection: null }, 'no change, nothing to refuse');
});

t.test('a preview changes nothing', async (t) => {
  t.same(await state(), unchanged);
});

t.test('bad candidates and callers are refused', async (t) => {
  assertProblem(t, await support.post(PATH, { storageBytes: -1 }), 400, 'validation_failed');
  assertProblem(t, await support.post(PATH, { messages: 2 ** 31 }), 400, 'validation_failed');
  assertProblem(t, await support.post(PATH, { storageBytes: '1G' }), 400, 'validation_failed');
  assertProblem(t, await support.post(PATH, { quota: { storageBytes: 1 } }), 400, 'unknown_field');
  assertProblem(t, await support.post(PATH, [1]), 400, 'validation_failed');
  assertProblem(t, await support.post(`/v1/mailboxes/nobody@${DOMAIN}/quota:preview`, {}), 404, 'mailbox_not_found');
  const otherTenant = client.as((await makeKey(api.services, 'admin', 'other tenant', ['other.test'])).headers);
  assertProblem(t, await otherTenant.post(PATH, { storageBytes: 1 }), 404, 'mailbox_not_found');
  const ownTenant = client.as((await makeKey(api.services, 'support', 'own tenant', [DOMAIN])).headers);
  t.equal((await ownTenant.post(PATH, { storageBytes: 1 })).statusCode, 200);
  assertProblem(t, await client.as().post(PATH, {}), 401, 'unauthenticated');
  assertProblem(t, await admin.post(`/v1/mailboxes/${ADDRESS}/quota`, {}), 404, 'not_found');
  assertProblem(t, await admin.post(`/v1/mailboxes/${ADDRESS}/quota:apply`, {}), 404, 'not_found');
  t.same(await state(), unchanged, 'still nothing changed');
});
