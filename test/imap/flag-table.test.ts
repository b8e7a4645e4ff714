import t from 'tap';
import { FlagTable } from '../../src/imap/flag-table.js';

t.test('equal flag lists are one shared, frozen list', async (t) => {
  const table = new FlagTable([
    { uid: 1, flags: ['\\Seen'] },
    { uid: 2, flags: ['\\Seen'] },
  ]);
  const other = new FlagTable([{ uid: 9, flags: ['\\Seen'] }]);
  t.equal(table.get(1), table.get(2), 'one list for both messages');
  t.equal(table.get(1), other.get(9), 'and for another session');
  t.ok(Object.isFrozen(table.get(1)), 'nobody can change it under the others');
  const given = ['\\Answered'];
  table.set(3, given);
  given.push('\\Deleted');
  t.strictSame(table.get(3), ['\\Answered'], 'a later change to the given array does not leak in');
  table.delete(3);
  t.equal(table.get(3), undefined);
});

t.test('many distinct lists (keywords) keep working past the sharing bound', async (t) => {
  const table = new FlagTable();
  for (let uid = 1; uid <= 12_000; uid++) table.set(uid, [`$k${uid}`]);
  t.strictSame(table.get(1), ['$k1']);
  t.strictSame(table.get(12_000), ['$k12000']);
});
