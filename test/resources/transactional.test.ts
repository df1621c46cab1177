// A handler run inside a transaction (conditional writes, PATCH, idempotent POSTs) tells this node
// its news (keys to forget, runs queued or cancelled) only once the transaction has committed: a
// key forgotten earlier could be verified again from rows not yet changed, and a rollback must
// tell nothing.
import t from 'tap';
import type { ServiceContext } from '../../src/contract/handlers.ts';
import { transactional } from '../../src/http/rules/preconditions.ts';
import { freshDatabase } from '../helper.ts';

const database = await freshDatabase(t);
const db = database.current;

// What reaches this node's keys and runs, in order.
function recorded() {
  const told: string[] = [];
  const context = {
    db,
    keys: {
      forgetKey: (id: string) => told.push(`forget key ${id}`),
      forgetMember: (orgId: string, userId: string) => told.push(`forget member ${orgId}/${userId}`),
      forgetOrganization: (orgId: string) => told.push(`forget organization ${orgId}`),
    },
    runs: {
      start: async () => {},
      finished: async () => true,
      started: (id: string) => told.push(`queued ${id}`),
      cancelled: (id: string) => told.push(`cancelled ${id}`),
    },
  } as unknown as ServiceContext;
  return { told, context };
}

t.test('news is held until the transaction commits, then told in order', async (t) => {
  const { told, context } = recorded();
  let tell = () => {};
  await db.$transaction(async (tx) => {
    const held = transactional(tx, context);
    tell = held.told;
    held.context.keys.forgetKey('k1');
    held.context.runs.started('r1');
    held.context.keys.forgetMember('o1', 'u1');
    t.same(told, [], 'nothing before the commit');
    t.same(await held.context.db.$transaction(async (nested) => nested.$queryRaw`SELECT 1 AS one`), [{ one: 1 }], 'a nested transaction joins it');
  });
  tell();
  t.same(told, ['forget key k1', 'queued r1', 'forget member o1/u1']);
});

t.test('a rollback tells nothing', async (t) => {
  const { told, context } = recorded();
  const failed = await db
    .$transaction(async (tx) => {
      transactional(tx, context).context.keys.forgetOrganization('o1');
      throw new Error('rolled back');
    })
    .catch((error: Error) => error.message);
  t.equal(failed, 'rolled back');
  t.same(told, []);
});
