import t from 'tap';
import { run, type LineClient } from '../helpers/line-client.js';
import { startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const { folders } = imap.services.mail;
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nHello\r\n';
const DEFAULTS = ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash'];

let mailboxes = 0;
/**
 * A fresh mailbox logged in over a raw connection, with `create` made and only `subscribed`
 * subscribed to; `deleted` are made, subscribed and deleted again (their subscriptions stay).
 */
async function mailbox(setup: { create?: string[]; subscribed?: string[]; deleted?: string[] } = {}) {
  const address = `user${++mailboxes}@list-extended.test`;
  const accountId = await imap.mailbox(address);
  for (const name of [...(setup.create ?? []), ...(setup.deleted ?? [])]) await folders.create(accountId, name);
  for (const name of setup.deleted ?? []) await folders.delete(accountId, name);
  if (setup.subscribed) {
    for (const name of [...DEFAULTS, 'INBOX', ...(setup.create ?? [])]) {
      if (!setup.subscribed.includes(name)) await folders.subscribe(accountId, name, false);
    }
  }
  return { address, accountId, client: await imap.login(address) };
}

async function answer(client: LineClient, command: string): Promise<string[]> {
  return run(client, command);
}

t.test('CAPABILITY names LIST-EXTENDED, LIST-STATUS and SPECIAL-USE once logged in', async (t) => {
  const { client } = await mailbox();
  const [capabilities] = await answer(client, 'c1 CAPABILITY');
  for (const name of ['LIST-EXTENDED', 'LIST-STATUS', 'SPECIAL-USE']) t.match(capabilities, new RegExp(` ${name}( |$)`), name);
});

// RFC 5258 §5 examples 1 to 7, on its hierarchy beside our default folders.
const FRUIT = {
  create: ['Fruit', 'Fruit/Apple', 'Fruit/Banana', 'Tofu', 'Vegetable', 'Vegetable/Broccoli', 'Vegetable/Corn'],
  subscribed: ['INBOX', 'Fruit/Banana', 'Vegetable', 'Vegetable/Broccoli'],
  deleted: ['Fruit/Peach'],
};

t.test('RFC 5258 examples 1-3: the hierarchy, LIST (SUBSCRIBED) with a deleted folder, RETURN (CHILDREN)', async (t) => {
  const { client } = await mailbox(FRUIT);
  t.same(await answer(client, 'A01 LIST "" "*"'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasChildren) "/" "Fruit"',
    '* LIST (\\HasNoChildren) "/" "Fruit/Apple"',
    '* LIST (\\HasNoChildren) "/" "Fruit/Banana"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren) "/" "Tofu"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* LIST (\\HasChildren) "/" "Vegetable"',
    '* LIST (\\HasNoChildren) "/" "Vegetable/Broccoli"',
    '* LIST (\\HasNoChildren) "/" "Vegetable/Corn"',
    'A01 OK LIST completed',
  ]);
  const subscribed = [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"',
    '* LIST (\\NonExistent \\Noselect \\HasNoChildren \\Subscribed) "/" "Fruit/Peach"',
    '* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"',
  ];
  t.same(await answer(client, 'A02 LIST (SUBSCRIBED) "" "*"'), [...subscribed, 'A02 OK LIST completed']);
  t.same(await answer(client, 'A03 LIST () "" "%" RETURN (CHILDREN)'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasChildren) "/" "Fruit"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren) "/" "Tofu"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* LIST (\\HasChildren) "/" "Vegetable"',
    'A03 OK LIST completed',
  ]);
  // Example 5: REMOTE adds no folders here (there are no remote ones); options in any case, repeated ones count once.
  t.same(await answer(client, 'A05 list (remote Subscribed SUBSCRIBED) "" "*"'), [...subscribed, 'A05 OK LIST completed']);
  // The LSUB view of the same subscriptions: the deleted folder too, without LIST's attributes.
  t.same(await answer(client, 'A05b LSUB "" "Fruit/*"'), ['* LSUB () "/" "Fruit/Banana"', '* LSUB () "/" "Fruit/Peach"', 'A05b OK LSUB completed']);
});

t.test('RFC 5258 examples 6-7: RETURN (SUBSCRIBED) adds no names; several patterns, each name once', async (t) => {
  const { client } = await mailbox(FRUIT);
  t.same(await answer(client, 'A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasChildren) "/" "Fruit"',
    '* LIST (\\HasNoChildren) "/" "Fruit/Apple"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren) "/" "Tofu"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"',
    '* LIST (\\HasNoChildren) "/" "Vegetable/Corn"',
    'A06 OK LIST completed',
  ]);
  t.same(await answer(client, 'BBB LIST "" ("INBOX" "Drafts" "Vegetable/%" "Veg*")'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasChildren) "/" "Vegetable"',
    '* LIST (\\HasNoChildren) "/" "Vegetable/Broccoli"',
    '* LIST (\\HasNoChildren) "/" "Vegetable/Corn"',
    'BBB OK LIST completed',
  ]);
  t.same(await answer(client, 'B2 LIST "Vegetable/" (Corn "" inbox)'), ['* LIST (\\HasNoChildren) "/" "Vegetable/Corn"', 'B2 OK LIST completed'], 'the reference applies to each pattern');
  // An extended LIST never takes "" as the delimiter question (RFC 5258 §3), and ignores patterns it does not take.
  t.same(await answer(client, 'B3 LIST () "" ""'), ['B3 OK LIST completed']);
  t.same(await answer(client, 'B4 LIST "" ("" "Tofu")'), ['* LIST (\\HasNoChildren) "/" "Tofu"', 'B4 OK LIST completed']);
  t.same(await answer(client, `B5 LIST "" ("Entwürfe" "${'*a'.repeat(700)}" Tofu)`), ['* LIST (\\HasNoChildren) "/" "Tofu"', 'B5 OK LIST completed']);
  t.same(await answer(client, 'B6 LIST "" ""'), ['* LIST (\\Noselect) "/" ""', 'B6 OK LIST completed'], 'a plain LIST still does');
});

t.test('RFC 5258 example 8: \\HasChildren against CHILDINFO', async (t) => {
  const { accountId, client } = await mailbox({ create: ['Foo', 'Foo/Bar', 'Foo/Baz', 'Moo'], subscribed: ['Foo/Baz'] });
  t.same(await answer(client, 'CA3 LIST "" "%oo" RETURN (CHILDREN)'), [
    '* LIST (\\HasChildren) "/" "Foo"',
    '* LIST (\\HasNoChildren) "/" "Moo"',
    'CA3 OK LIST completed',
  ]);
  t.same(await answer(client, 'C02 LIST (SUBSCRIBED) "" "*"'), ['* LIST (\\HasNoChildren \\Subscribed) "/" "Foo/Baz"', 'C02 OK LIST completed']);
  t.same(await answer(client, 'C03 LIST (SUBSCRIBED) "" "%"'), ['C03 OK LIST completed']);
  t.same(await answer(client, 'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), [
    '* LIST (\\HasChildren) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
    'C04 OK LIST completed',
  ]);
  // A1: Foo subscribed as well.
  await folders.subscribe(accountId, 'Foo', true);
  t.same(await answer(client, 'C05 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), [
    '* LIST (\\HasChildren \\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
    'C05 OK LIST completed',
  ]);
  // B: nothing subscribed below Foo, nor anywhere.
  await folders.subscribe(accountId, 'Foo', false);
  await folders.subscribe(accountId, 'Foo/Baz', false);
  t.same(await answer(client, 'C06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), ['C06 OK LIST completed']);
  // C: only Foo and Moo subscribed.
  await folders.subscribe(accountId, 'Foo', true);
  await folders.subscribe(accountId, 'Moo', true);
  t.same(await answer(client, 'C07 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'), [
    '* LIST (\\HasChildren \\Subscribed) "/" "Foo"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Moo"',
    'C07 OK LIST completed',
  ]);
});

t.test('RFC 5258 example 8 A2: a level that is no folder, with a subscribed name below', async (t) => {
  const { client } = await mailbox({ create: ['Foo/Baz'], subscribed: ['Foo/Baz'] });
  t.same(await answer(client, 'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
    'C04 OK LIST completed',
  ]);
});

t.test('RFC 5258 example 9: CHILDINFO whether or not the names below match the pattern', async (t) => {
  const { client } = await mailbox({
    create: ['foo2', 'foo2/bar1', 'foo2/bar2', 'baz2', 'baz2/bar2', 'baz2/bar22', 'baz2/bar222', 'eps2', 'eps2/mamba', 'qux2/bar2'],
    subscribed: ['foo2/bar1', 'foo2/bar2', 'baz2/bar2', 'baz2/bar22', 'baz2/bar222', 'eps2', 'eps2/mamba', 'qux2/bar2'],
  });
  t.same(await answer(client, 'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar2"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar22"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar222"',
    '* LIST (\\HasChildren \\Subscribed) "/" "eps2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasChildren) "/" "foo2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar2"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "qux2/bar2"',
    'D03 OK LIST completed',
  ]);
  // With "*" every subscribed name is listed itself: a level not subscribed gets no redundant
  // CHILDINFO (the SHOULD of RFC 5258 §3.5; the RFC's own example shows both ways).
  t.same(await answer(client, 'D04 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar2"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar22"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar222"',
    '* LIST (\\HasChildren \\Subscribed) "/" "eps2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "eps2/mamba"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar1"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar2"',
    '* LIST (\\HasNoChildren \\Subscribed) "/" "qux2/bar2"',
    'D04 OK LIST completed',
  ]);
  t.same(await answer(client, 'D05 LIST (RECURSIVEMATCH SUBSCRIBED) "" "%"'), [
    '* LIST (\\HasChildren) "/" "baz2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasChildren \\Subscribed) "/" "eps2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasChildren) "/" "foo2" ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "qux2" ("CHILDINFO" ("SUBSCRIBED"))',
    'D05 OK LIST completed',
  ]);
});

t.test('RFC 5258 examples 10-11: CHILDINFO without \\HasChildren; a level that is no folder', async (t) => {
  const { client } = await mailbox({ create: ['foo', 'music/rock'], subscribed: ['music/rock'], deleted: ['foo/bar'] });
  t.same(await answer(client, 'a1 LIST "" ("foo" "foo/*")'), ['* LIST (\\HasNoChildren) "/" "foo"', 'a1 OK LIST completed']);
  t.same(await answer(client, 'a2 LIST (SUBSCRIBED) "" "foo/*"'), [
    '* LIST (\\NonExistent \\Noselect \\HasNoChildren \\Subscribed) "/" "foo/bar"',
    'a2 OK LIST completed',
  ]);
  t.same(await answer(client, 'a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)'), [
    '* LIST (\\HasNoChildren) "/" "foo" ("CHILDINFO" ("SUBSCRIBED"))',
    'a3 OK LIST completed',
  ]);
  t.same(await answer(client, 'b1 LIST () "" m%'), ['* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "music"', 'b1 OK LIST completed']);
  // Example 11 allows both; this server lists the level as well.
  t.same(await answer(client, 'b2 LIST "" (m% music/rock)'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "music"',
    '* LIST (\\HasNoChildren) "/" "music/rock"',
    'b2 OK LIST completed',
  ]);
});

t.test('RFC 6154: RETURN (SPECIAL-USE), the SPECIAL-USE selection, with SUBSCRIBED and RECURSIVEMATCH', async (t) => {
  const { accountId, client } = await mailbox({ create: ['Projects'] });
  t.same(await answer(client, 't2 LIST "" "%" RETURN (SPECIAL-USE)'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren) "/" "Projects"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    't2 OK LIST completed',
  ]);
  t.same(await answer(client, 't3 LIST (SPECIAL-USE) "" "*"'), [
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    't3 OK LIST completed',
  ]);
  await folders.subscribe(accountId, 'Junk', false);
  await folders.rename(accountId, 'Sent', 'Mail/Sent');
  t.same(await answer(client, 't4 LIST (SUBSCRIBED SPECIAL-USE) "" "*"'), [
    '* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Mail/Sent"',
    '* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"',
    't4 OK LIST completed',
  ]);
  t.same(await answer(client, 't5 LIST (SPECIAL-USE RECURSIVEMATCH) "" "M%"'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Mail" ("CHILDINFO" ("SPECIAL-USE"))',
    't5 OK LIST completed',
  ]);
  t.same(await answer(client, 't6 LIST (SPECIAL-USE SUBSCRIBED RECURSIVEMATCH) "" "M%"'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Mail" ("CHILDINFO" ("SUBSCRIBED" "SPECIAL-USE"))',
    't6 OK LIST completed',
  ]);
});

t.test('errors: unknown options, RECURSIVEMATCH alone, malformed RETURN are BAD; nothing is listed', async (t) => {
  const { client } = await mailbox();
  for (const bad of [
    'LIST (RECURSIVEMATCH) "" "*"',
    'LIST (REMOTE RECURSIVEMATCH) "" "*"',
    'LIST (BOGUS) "" "*"',
    'LIST ("SUBSCRIBED") "" "*"',
    'LIST ((SUBSCRIBED)) "" "*"',
    'LIST "" "*" RETURN (BOGUS)',
    'LIST "" "*" RETURN (CHILDREN MORE)',
    'LIST "" "*" RETURN CHILDREN',
    'LIST "" "*" RETURNS (CHILDREN)',
    'LIST "" "*" RETURN',
    'LIST "" "*" RETURN (CHILDREN) extra',
    'LIST "" "*" RETURN (STATUS)',
    'LIST "" "*" RETURN (STATUS ())',
    'LIST "" "*" RETURN (STATUS MESSAGES)',
    'LIST "" "*" RETURN (STATUS (MESSAGES BOGUS))',
    'LIST "" ((INBOX))',
    'LIST () ""',
    'LIST ()',
  ]) {
    const lines = await answer(client, `x ${bad}`);
    t.same(lines.length, 1, `${bad}: no LIST lines`);
    t.match(lines.at(-1), /^x BAD /, bad);
  }
  t.match((await answer(client, 'x LIST (RECURSIVEMATCH) "" "*"')).at(-1), /RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE/);
  t.match((await answer(client, 'x LIST "" "*" RETURN (STATUS (BOGUS))')).at(-1), /Unknown status item BOGUS/);
});

t.test('RFC 5819 LIST-STATUS: a STATUS after each folder listed, none for levels and names without a folder', async (t) => {
  const { address, accountId, client } = await mailbox({ create: ['foo', 'bar/baz'], subscribed: ['INBOX', 'foo/x'] });
  for (let i = 0; i < 17; i++) await imap.deliver(address, MESSAGE);
  await imap.deliver(address, MESSAGE, 'foo');
  const inbox = await folders.get(accountId, 'INBOX');
  await imap.services.mail.changeFlags(accountId, inbox.id, [1], 'add', ['\\Seen']);
  t.same(await answer(client, 'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* STATUS "INBOX" (MESSAGES 17 UNSEEN 16)',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* STATUS "Archive" (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* STATUS "Drafts" (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* STATUS "Junk" (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* STATUS "Sent" (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* STATUS "Trash" (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "bar"',
    '* LIST (\\HasNoChildren) "/" "foo"',
    '* STATUS "foo" (MESSAGES 1 UNSEEN 1)',
    'A01 OK LIST completed',
  ]);
  // foo is listed for its subscribed name below (which no folder has), not for meeting the selection: no STATUS.
  await folders.create(accountId, 'foo/x');
  await folders.delete(accountId, 'foo/x');
  t.same(await answer(client, 'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
    '* STATUS "INBOX" (MESSAGES 17)',
    '* LIST (\\HasNoChildren) "/" "foo" ("CHILDINFO" ("SUBSCRIBED"))',
    'A02 OK LIST completed',
  ]);
  t.same(await answer(client, 'A03 LIST (SUBSCRIBED) "" * RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
    '* STATUS "INBOX" (MESSAGES 17)',
    '* LIST (\\NonExistent \\Noselect \\HasNoChildren \\Subscribed) "/" "foo/x"',
    'A03 OK LIST completed',
  ]);
});

t.test('LIST-STATUS answers what STATUS does for every item, with one count for all the folders listed', async (t) => {
  const { address, accountId, client } = await mailbox({ create: ['Work', 'Work/2026'] });
  for (let i = 0; i < 3; i++) await imap.deliver(address, MESSAGE);
  await imap.deliver(address, MESSAGE, 'Work/2026');
  const inbox = await folders.get(accountId, 'INBOX');
  await imap.services.mail.changeFlags(accountId, inbox.id, [2], 'add', ['\\Seen']);
  await run(client, 's1 SELECT INBOX');
  await imap.deliver(address, MESSAGE);
  const items = 'MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE';
  const expected: string[] = [];
  for (const name of ['INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash', 'Work', 'Work/2026']) {
    expected.push((await answer(client, `s2 STATUS "${name}" (${items})`))[0]!);
  }
  t.match(expected[0], /RECENT 4 /, 'RECENT counts what this session claimed and what it has not seen yet');
  const counts = folders.counts;
  let calls = 0;
  folders.counts = (...args) => {
    calls += 1;
    return counts(...args);
  };
  t.teardown(() => {
    folders.counts = counts;
  });
  const lines = await answer(client, `l1 LIST "" * RETURN (STATUS (${items}) CHILDREN)`);
  t.same(lines.filter((line) => line.startsWith('* STATUS')), expected);
  t.equal(calls, 1, 'one count for all eight folders');
  t.same(lines.filter((line) => line.startsWith('* LIST')).length, 8);
  calls = 0;
  t.same((await answer(client, 'l2 LIST "" Work RETURN (STATUS (MESSAGES UIDNEXT))')).slice(1, -1), ['* STATUS "Work" (MESSAGES 0 UIDNEXT 1)']);
  t.equal(calls, 0, 'nothing to count: the folder rows hold MESSAGES and UIDNEXT');
  t.same(await answer(client, 'l3 LIST "" Work/2026 RETURN (STATUS (UNSEEN) STATUS (MESSAGES UNSEEN))'), [
    '* LIST (\\HasNoChildren) "/" "Work/2026"',
    '* STATUS "Work/2026" (UNSEEN 1 MESSAGES 1)',
    'l3 OK LIST completed',
  ], 'STATUS twice: the items of both, each once');
});

t.test('imapflow: list() with a statusQuery takes LIST-STATUS and RETURN (SUBSCRIBED), no STATUS per folder', async (t) => {
  const { address, accountId } = await mailbox({ create: ['Clients/Acme'], deleted: ['Gone'] });
  await imap.deliver(address, MESSAGE, 'Clients/Acme');
  await folders.subscribe(accountId, 'Drafts', false);
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  const counts = folders.counts;
  const get = folders.get;
  let countCalls = 0;
  let getCalls = 0;
  folders.counts = (...args) => {
    countCalls += 1;
    return counts(...args);
  };
  folders.get = (...args) => {
    getCalls += 1;
    return get(...args);
  };
  t.teardown(() => {
    folders.counts = counts;
    folders.get = get;
  });
  const listed = await client.list({ statusQuery: { messages: true, unseen: true, uidNext: true } });
  t.equal(countCalls, 1, 'unseen counted once for every folder');
  t.equal(getCalls, 0, 'no STATUS command was sent');
  const byPath = new Map(listed.map((entry) => [entry.path, entry]));
  t.same([...byPath.keys()].sort(), ['Archive', 'Clients', 'Clients/Acme', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'], 'the deleted folder is not listed');
  t.match(byPath.get('Clients/Acme')!.status, { messages: 1, unseen: 1, uidNext: 2 });
  t.match(byPath.get('INBOX')!.status, { messages: 0, unseen: 0, uidNext: 1 });
  t.notOk(byPath.get('Clients')!.status, 'a level that is no folder has no status');
  t.ok(byPath.get('Clients')!.flags.has('\\Noselect'));
  t.equal(byPath.get('Clients/Acme')!.subscribed, true);
  t.notOk(byPath.get('Drafts')!.subscribed, 'the subscription state came with the LIST');
  t.equal(byPath.get('Sent')!.specialUse, '\\Sent');
});
