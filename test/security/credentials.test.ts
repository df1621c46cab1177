// A member misusing an owner's tool credentials. Each attack, and what it must get:
// - an action header that routes the request elsewhere or changes how it is framed (Host,
//   Connection, Transfer-Encoding, Content-Length, Proxy-*, …), on POST, PUT or PATCH /actions:
//   422 naming the header; one already stored fails its step before anything is sent;
// - an action header named as the tool's credential (Authorization for bearer, basic and
//   OAuth 2.0 tools, an API key's header): 422; when the owner's credentials move onto a header
//   an action already sets, the credential is sent and the action's value dropped;
// - an endpoint with `%2e%2e` segments: 422; a placeholder value of `..`, `.`, `%2e%2e` or
//   `..%2F..`: the step fails (invalid-inputs) and the target hears nothing: every request stays
//   under the tool's base URL (same origin, path prefix);
// - the same with a path parameter that servers such as Tomcat and Spring read as a `..` or `.`
//   segment (`/..;/admin`, `/.;x/`): 422 for an endpoint; a placeholder value of `..;`,
//   `..;x` or `.;`: the step fails (invalid-inputs) and the target hears nothing;
// - a target that echoes the credential, and a template that forwards it, whole or in slices,
//   to the member's own tool: what the templates see is scrubbed, so no piece arrives;
// - a target that echoes its URL as the client encoded it (form encoding: `+`, `%27`) with an
//   API key in the query: scrubbed from the record and from what templates see.
import { randomInt } from 'node:crypto';
import t from 'tap';
import { world } from '../engine/world.ts';
import { addMember, call, type Member } from '../helper.ts';

const w = await world(t);
const member: Member = await addMember(w.app, w.member);
const asMember = (options: Parameters<typeof call>[2]) => call(w.app, member, options);
// Letters that no hex id, date or `[REDACTED]` is made of, so that any piece of it found is a leak.
const SECRET = Array.from({ length: 32 }, () => 'HJKLNPQSVWXYZ'[randomInt(13)]).join('');

async function tool(payload: Record<string, unknown>) {
  const created = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Owner tool', baseUrl: w.target.url, ...payload } });
  if (created.statusCode !== 201) throw new Error(created.body);
  return created.data.id as string;
}

let keys = 0;
async function action(toolId: string, fields: Record<string, unknown> = {}) {
  const key = `sec-${++keys}`;
  return asMember({ method: 'POST', url: '/actions', payload: { toolId, name: key, key, method: 'POST', endpoint: `/echo/${key}`, ...fields } });
}

async function runSteps(steps: Record<string, unknown>[]) {
  const flow = await asMember({ method: 'POST', url: '/flows', payload: { name: 'Misuse', steps } });
  if (flow.statusCode !== 201) throw new Error(flow.body);
  const started = await asMember({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: {}, headers: { prefer: 'wait=30' } });
  return w.finished(started.data.id);
}

const receivedBy = (executionId: string, step: string) => w.target.received.filter((r) => r.headers['idempotency-key'] === `${executionId}:${step}`);

t.test('headers that route or frame the request are refused when the action is written', async (t) => {
  const plain = await tool({});
  for (const name of ['Host', 'connection', 'Transfer-Encoding', 'Content-Length', 'Proxy-Authorization', 'proxy-connection', 'Keep-Alive', 'TE', 'Upgrade']) {
    const created = await action(plain, { headers: { [name]: 'evil.example' } });
    t.equal(created.statusCode, 422, name);
    t.match(created.data.errors, [{ pointer: `/headers/${name}`, message: /routes or frames the request/ }], name);
  }
  const fine = await action(plain, { headers: { 'X-Trace': 'yes', Authorization: 'Bearer mine' } });
  t.equal(fine.statusCode, 201, 'ordinary headers, and Authorization on a tool without credentials, are fine');
  const put = await asMember({ method: 'PUT', url: `/actions/${fine.data.id}`, payload: { headers: { HOST: 'evil.example' } } });
  t.equal(put.statusCode, 422, 'PUT');
  const patch = await asMember({
    method: 'PATCH',
    url: `/actions/${fine.data.id}`,
    payload: { headers: { 'Proxy-Authorization': 'x' } },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(patch.statusCode, 422, 'PATCH');
});

t.test("a header named as the tool's credential is refused when the action is written", async (t) => {
  const bearer = await tool({ authType: 'bearer', credentials: { token: SECRET } });
  const apiKey = await tool({ authType: 'apiKey', credentials: { name: 'X-Api-Key', value: SECRET } });
  const inQuery = await tool({ authType: 'apiKey', credentials: { name: 'api_key', value: SECRET, in: 'query' } });
  const refused = await action(bearer, { headers: { authorization: 'Bearer attacker' } });
  t.equal(refused.statusCode, 422);
  t.match(refused.data.errors, [{ pointer: '/headers/authorization', message: /carries the tool's credentials/ }]);
  t.equal((await action(apiKey, { headers: { 'x-API-key': 'attacker' } })).statusCode, 422, 'an API key header, whatever its case');
  t.equal((await action(inQuery, { headers: { api_key: 'mine' } })).statusCode, 201, 'a key sent in the query claims no header');
  // Moving an action with Authorization onto a bearer tool.
  const plain = await action(await tool({}), { headers: { Authorization: 'Bearer mine' } });
  const moved = await asMember({ method: 'PUT', url: `/actions/${plain.data.id}`, payload: { toolId: bearer } });
  t.equal(moved.statusCode, 422, 'moved onto a tool whose credential is that header');
});

t.test('at run time, routing headers stored before the rule fail the step, and the credential wins its own header', async (t) => {
  const plain = await tool({});
  const stored = await action(plain);
  await w.db.action.update({ where: { id: stored.data.id }, data: { headers: JSON.stringify({ Host: 'evil.example' }) } });
  const refused = await runSteps([{ key: 'a', actionId: stored.data.id }]);
  t.match(refused.steps[0], { status: 'failed', error: { code: 'invalid-action', message: /Host/ } });
  t.equal(receivedBy(refused.id, 'a').length, 0, 'nothing was sent');

  const keyed = await tool({ authType: 'apiKey', credentials: { name: 'X-Old-Key', value: SECRET } });
  const claiming = await action(keyed, { headers: { 'X-New-Key': 'attacker' } });
  t.equal(claiming.statusCode, 201);
  const moved = await w.send({ method: 'PUT', url: `/tools/${keyed}`, payload: { credentials: { name: 'X-New-Key', value: SECRET } } });
  t.equal(moved.statusCode, 200);
  const ran = await runSteps([{ key: 'a', actionId: claiming.data.id }]);
  t.equal(ran.status, 'completed');
  t.equal(receivedBy(ran.id, 'a')[0]!.headers['x-new-key'], SECRET, "the credential, not the action's value");
});

t.test("every request stays under the tool's base URL", async (t) => {
  const scoped = await tool({ authType: 'bearer', credentials: { token: SECRET }, baseUrl: `${w.target.url}/echo/tenant` });
  for (const endpoint of ['/%2e%2e/admin', '/a/%2E%2e/b', '/.%2e/x', '/%2e/x']) {
    const created = await action(scoped, { endpoint });
    t.equal(created.statusCode, 422, endpoint);
    t.match(created.data.errors, [{ pointer: '/endpoint' }], endpoint);
  }
  const byId = await action(scoped, { endpoint: '/items/{id}', method: 'GET' });
  t.equal(byId.statusCode, 201);
  for (const id of ['..', '.', '%2e%2e', '%2E%2e', '..%2F..%2Fadmin', '../../admin']) {
    const execution = await runSteps([{ key: 'a', actionId: byId.data.id, inputs: { id } }]);
    t.match(execution.steps[0], { status: 'failed', error: { code: 'invalid-inputs', message: /stay under the tool's base URL/ } }, id);
    t.equal(receivedBy(execution.id, 'a').length, 0, `${id}: nothing was sent`);
  }
  const ordinary = await runSteps([{ key: 'a', actionId: byId.data.id, inputs: { id: 'v1.2..3' } }]);
  t.equal(ordinary.status, 'completed');
  t.equal(receivedBy(ordinary.id, 'a')[0]!.path, '/echo/tenant/items/v1.2..3');
  t.equal(receivedBy(ordinary.id, 'a')[0]!.headers.authorization, `Bearer ${SECRET}`);
});

t.test("segments that Java servers read as .. or . do not leave the tool's base URL either", async (t) => {
  const scoped = await tool({ authType: 'bearer', credentials: { token: SECRET }, baseUrl: `${w.target.url}/echo/tenant` });
  for (const endpoint of ['/..;/admin', '/a/..;jsessionid=x/b', '/.;/x', '/%2e%2e;/x']) {
    const created = await action(scoped, { endpoint });
    t.equal(created.statusCode, 422, endpoint);
    t.match(created.data.errors, [{ pointer: '/endpoint' }], endpoint);
  }
  const byId = await action(scoped, { endpoint: '/items/{id}', method: 'GET' });
  for (const id of ['..;', '..;x', '.;', '%2e%2e;']) {
    const execution = await runSteps([{ key: 'a', actionId: byId.data.id, inputs: { id } }]);
    t.match(execution.steps[0], { status: 'failed', error: { code: 'invalid-inputs', message: /stay under the tool's base URL/ } }, id);
    t.equal(receivedBy(execution.id, 'a').length, 0, `${id}: nothing was sent`);
  }
  const ordinary = await runSteps([{ key: 'a', actionId: byId.data.id, inputs: { id: 'a;b' } }]);
  t.equal(ordinary.status, 'completed', 'a parameter after an ordinary name is fine');
});

t.test('an echoed credential never reaches a template, whole or in pieces', async (t) => {
  const owners = await tool({ authType: 'bearer', credentials: { token: SECRET } });
  const echo = await action(owners, { method: 'GET' });
  const mine = await action(await tool({ name: 'Member tool' }));
  const header = 'steps.a.output.headers.authorization';
  const execution = await runSteps([
    { key: 'a', actionId: echo.data.id },
    {
      key: 'b',
      actionId: mine.data.id,
      inputs: {
        whole: `\${${header}}`,
        pieces: [0, 5, 7, 10, 15, 20, 25].map((start) => `\${${header}[${start}:${start + 6}]}`),
        tail: `\${${header}[7:]}`,
        headers: { $eval: 'steps.a.headers' },
        output: { $eval: 'steps.a.output' },
      },
    },
  ]);
  t.equal(execution.status, 'completed');
  const forwarded = JSON.stringify(receivedBy(execution.id, 'b')[0]!.body);
  t.match(forwarded, /\[REDACTED\]/, 'the member got the scrubbed answer');
  for (let start = 0; start + 4 <= SECRET.length; start++) {
    const piece = SECRET.slice(start, start + 4);
    if (forwarded.includes(piece)) t.fail(`the piece ${piece} of the credential reached the member's tool`);
  }
  t.equal(receivedBy(execution.id, 'a')[0]!.headers.authorization, `Bearer ${SECRET}`, 'the owner tool got the credential');
});

t.test('an API key in the query is scrubbed in the encoding the client sent it in', async (t) => {
  const value = `k3y with 'quotes' & more ${Date.now()}`;
  const keyed = await tool({ authType: 'apiKey', credentials: { name: 'api_key', value, in: 'query' } });
  const raw = await action(keyed, { method: 'GET', endpoint: '/raw/url' });
  const mine = await action(await tool({ name: 'Member tool' }));
  const execution = await runSteps([
    { key: 'a', actionId: raw.data.id, inputs: { q: 'x' } },
    { key: 'b', actionId: mine.data.id, inputs: { url: '${steps.a.output.url}' } },
  ]);
  t.equal(execution.status, 'completed');
  const encoded = new URLSearchParams({ api_key: value }).toString().slice('api_key='.length);
  t.match(encoded, /\+.*%27/, 'the key went out form-encoded');
  t.ok(receivedBy(execution.id, 'a')[0], 'the target was called');
  const shown = [
    (await asMember({ method: 'GET', url: `/executions/${execution.id}` })).body,
    (await asMember({ method: 'GET', url: `/execution-logs?executionId=${execution.id}` })).body,
    JSON.stringify(receivedBy(execution.id, 'b')[0]!.body),
  ];
  for (const text of shown) {
    t.notOk(text.includes(encoded), 'the form-encoded key is shown nowhere');
    t.notOk(text.includes(encodeURIComponent(value)), 'nor the percent-encoded one');
    t.notOk(text.includes(value), 'nor the key itself');
  }
  t.match(receivedBy(execution.id, 'b')[0]!.body, { url: /api_key=\[REDACTED\]/ });
});
