// Attacks on the audit trail (execution logs), by a plain member of the organization with an
// ordinary API key, against the logs the engine wrote for the owner's run:
// - rewriting an engine-written log (PUT, PATCH): must answer 409 naming the log as the engine's,
//   and change nothing; the owner is refused the same way;
// - deleting an engine-written log: 409 as well, for the member and the owner alike;
// - writing a log in the owner's name (userId in a POST, a PUT or a PATCH body): must answer 400,
//   `userId` not being a field one sends; a hand-written log names its writer, the caller;
// - rewriting the owner's hand-written log: allowed, but the log then names the member as its writer;
// - deleting a hand-written log: 403 for a member; only owners may.
import t from 'tap';
import { world } from '../engine/world.ts';
import { addMember, buildTestApp, call, testAuth } from '../helper.ts';

const w = await world(t, {}, await buildTestApp(t, { worker: true }, undefined, testAuth('keys')));
const owner = w.member;
const member = await addMember(w.app, owner);
const action = await w.action();
const flow = await w.flow({ steps: [{ key: 'echo', actionId: action, inputs: { text: 'hello' } }] });
const run = await w.run(flow.id);
const engineLogs = (await call(w.app, owner, { method: 'GET', url: `/execution-logs?executionId=${run.id}` })).data.items;

const merge = { 'content-type': 'application/merge-patch+json' };
const handWritten = async (by = owner) =>
  (
    await call(w.app, by, {
      method: 'POST',
      url: '/execution-logs',
      payload: { flowId: flow.id, executionId: 'notes', stepKey: 'review', status: 'completed' },
    })
  ).data;

t.test('the engine wrote logs for the run, and says so', async (t) => {
  t.equal(run.status, 'completed');
  t.ok(engineLogs.length > 0);
  for (const log of engineLogs) t.equal(log.writtenBy, 'engine');
});

t.test('an engine-written log is read-only for everyone: 409 naming why, nothing changed', async (t) => {
  const [log] = engineLogs;
  for (const who of [member, owner]) {
    const writes = [
      { method: 'PUT', url: `/execution-logs/${log.id}`, payload: { status: 'failed' } },
      { method: 'PATCH', url: `/execution-logs/${log.id}`, payload: { status: 'failed' }, headers: merge },
      { method: 'DELETE', url: `/execution-logs/${log.id}` },
      { method: 'DELETE', url: `/execution-logs/${log.id}`, headers: { 'if-match': '*' } },
    ] as const;
    for (const write of writes) {
      const refused = await call(w.app, who, write);
      t.equal(refused.statusCode, 409, `${write.method} by ${who === owner ? 'the owner' : 'a member'}`);
      t.match(refused.data.detail, /written by the engine/);
    }
  }
  t.same((await call(w.app, owner, { method: 'GET', url: `/execution-logs/${log.id}` })).data, log);
});

t.test("no one writes a log in another member's name", async (t) => {
  const forged = await call(w.app, member, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flow.id, userId: owner.userId, executionId: 'notes', stepKey: 'review', status: 'completed' },
  });
  t.equal(forged.statusCode, 400);
  t.match(forged.data.errors, [{ pointer: '/userId', message: 'is not a known field' }]);
  const own = await handWritten(member);
  t.equal(own.userId, member.userId, 'the caller is the writer');
  t.equal(own.writtenBy, 'member');
  for (const write of [
    { method: 'PUT', url: `/execution-logs/${own.id}`, payload: { userId: owner.userId } },
    { method: 'PATCH', url: `/execution-logs/${own.id}`, payload: { userId: owner.userId }, headers: merge },
  ] as const) {
    t.equal((await call(w.app, member, write)).statusCode, 400, write.method);
  }
});

t.test("a member may rewrite the owner's hand-written log, which then names the member", async (t) => {
  const log = await handWritten(owner);
  t.equal(log.userId, owner.userId);
  const rewritten = await call(w.app, member, { method: 'PATCH', url: `/execution-logs/${log.id}`, payload: { status: 'failed' }, headers: merge });
  t.equal(rewritten.statusCode, 200);
  t.equal(rewritten.data.userId, member.userId);
});

t.test('only owners delete hand-written logs', async (t) => {
  const log = await handWritten(member);
  const refused = await call(w.app, member, { method: 'DELETE', url: `/execution-logs/${log.id}` });
  t.equal(refused.statusCode, 403);
  t.match(refused.data.detail, /Only an owner/);
  t.equal((await call(w.app, owner, { method: 'DELETE', url: `/execution-logs/${log.id}` })).statusCode, 204);
});
