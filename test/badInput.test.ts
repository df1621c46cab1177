// Bad input of every kind, sent to every operation of the contract: each answer is a 4xx
// problem document that names what was wrong, never a 5xx, and nothing is written.
import t, { type Test } from 'tap';
import { MAX_NESTING } from '../src/http/jsonBody.ts';
import { operations, resolve } from './contract.ts';
import { buildTestApp, call, createTenant, MISSING_ID } from './helper.ts';

const { app, db } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
const action = (
  await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'Post', key: 'post', method: 'POST', endpoint: '/p' } })
).data;
const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'a', actionId: action.id }] } })).data;
const log = (await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { flowId: flow.id, executionId: 'r', stepKey: 'a', status: 'queued' } }))
  .data;
const apiKey = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'K' } })).data;
// Queued (no worker runs it): bad input to its rerun is refused before its state is looked at.
const execution = (await call(app, acme, { method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data;
const trigger = (await call(app, acme, { method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'T', type: 'webhook' } })).data;
const subscription = (
  await call(app, acme, { method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.example.com/t', events: ['execution.completed'] } })
).data;
const ids: Record<string, string> = {
  organizations: acme.orgId,
  users: acme.userId,
  'api-keys': apiKey.id,
  tools: tool.id,
  actions: action.id,
  flows: flow.id,
  'execution-logs': log.id,
  executions: execution.id,
  triggers: trigger.id,
  subscriptions: subscription.id,
};

// A body each operation accepts, to which one bad thing at a time is done.
const validBodies: Record<string, Record<string, unknown>> = {
  createOrganization: { name: 'N' },
  updateOrganization: { name: 'N' },
  createUser: { email: 'bad-input@example.com' },
  updateUser: { name: 'N' },
  createApiKey: { name: 'N' },
  createTool: { name: 'N', baseUrl: 'https://x.io' },
  updateTool: { name: 'N' },
  createAction: { toolId: tool.id, name: 'N', key: 'bad.input', method: 'GET', endpoint: '/x' },
  updateAction: { name: 'N' },
  createFlow: { name: 'N' },
  updateFlow: { name: 'N' },
  createExecutionLog: { flowId: flow.id, executionId: 'r', stepKey: 's', status: 'queued' },
  startExecution: { input: { note: 'n' } },
  retryExecution: { fromStep: 'a', input: { note: 'n' } },
  updateExecutionLog: { stepKey: 's' },
  patchOrganization: { name: 'N' },
  patchUser: { name: 'N' },
  patchTool: { name: 'N' },
  patchAction: { name: 'N' },
  patchFlow: { name: 'N' },
  patchExecutionLog: { stepKey: 's' },
  createTrigger: { flowId: flow.id, name: 'N', type: 'webhook' },
  updateTrigger: { name: 'N' },
  patchTrigger: { name: 'N' },
  signalExecution: { payload: { approved: true, by: 'ada@example.com' } },
  createSubscription: { url: 'https://hooks.example.com/s', events: ['execution.failed'] },
  updateSubscription: { url: 'https://hooks.example.com/u' },
  patchSubscription: { url: 'https://hooks.example.com/p' },
};

// A webhook takes any body, as its sender sends it (test/triggers/webhooks.test.ts).
const withBody = operations.filter((op) => op.operation.requestBody && !op.operation.requestBody.content['*/*']);
// The media type each body is sent as: JSON, or a JSON merge patch for PATCH.
const typeOf = (operationId: string) => Object.keys(withBody.find((op) => op.operationId === operationId)!.operation.requestBody.content)[0]!;
const withId = operations.filter((op) => op.path.includes('{id}'));
/** Whether a field of the operation's body takes any JSON value (a signal's payload), so that no value of it is of a wrong type. */
const takesAnyJson = (operationId: string, field: string) => {
  const { schema } = Object.values<any>(withBody.find((op) => op.operationId === operationId)!.operation.requestBody.content)[0]!;
  return resolve(schema.$ref).properties[field].$ref === '#/components/schemas/JsonValue';
};
const urlOf = (path: string) => path.replace('{id}', ids[path.split('/')[1]!]!).replace('{name}', 'approval');
const counts = () =>
  Promise.all([
    db.organization.count(),
    db.user.count(),
    db.apiKey.count(),
    db.tool.count(),
    db.action.count(),
    db.flow.count({ where: { deletedAt: null } }),
    db.flowStep.count(),
    db.executionLog.count(),
    db.trigger.count(),
    db.subscription.count(),
  ]);
const before = await counts();

async function expectProblem(t: Test, status: number, request: Parameters<typeof call>[2], label: string) {
  const response = await call(app, acme, request);
  t.equal(response.statusCode, status, label);
  t.match(response.headers['content-type'], /^application\/problem\+json/, `${label}: problem+json`);
  t.match(response.data, { type: /^\/problems\/[a-z-]+$/, title: String, status, detail: String }, `${label}: a problem document`);
  return response;
}

t.test('every body-taking operation has a valid body here', async (t) => {
  t.same(withBody.map((op) => op.operationId).sort(), Object.keys(validBodies).sort());
});

t.test('malformed JSON, wrong media types and empty bodies', async (t) => {
  for (const { path, method, operationId, operation } of withBody) {
    const json = { 'content-type': typeOf(operationId) };
    const url = urlOf(path);
    const verb = method.toUpperCase() as 'POST';
    await expectProblem(t, 400, { method: verb, url, headers: json, payload: '{"name": ' }, `${operationId}: truncated JSON`);
    await expectProblem(t, 400, { method: verb, url, headers: json, payload: "{'name': 'x'}" }, `${operationId}: single quotes`);
    await expectProblem(t, 400, { method: verb, url, headers: json, payload: '' }, `${operationId}: empty body`);
    if (operation.requestBody.required) await expectProblem(t, 400, { method: verb, url }, `${operationId}: no body at all`);
    else t.not((await call(app, acme, { method: verb, url })).statusCode, 400, `${operationId}: no body at all is no body, and allowed`);
    for (const text of ['[]', '"name"', '42', 'null', 'true']) {
      await expectProblem(t, 400, { method: verb, url, headers: json, payload: text }, `${operationId}: ${text}`);
    }
    const others = ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json'];
    // Each operation takes one of the two JSON media types, and not the other.
    others.push(json['content-type'] === 'application/json' ? 'application/merge-patch+json' : 'application/json');
    for (const type of others) {
      await expectProblem(
        t,
        415,
        { method: verb, url, headers: { 'content-type': type }, payload: JSON.stringify(validBodies[operationId]) },
        `${operationId}: ${type}`,
      );
    }
  }
});

t.test('an operation that takes no body ignores an empty one sent as JSON, and refuses a broken one', async (t) => {
  const empty = await call(app, acme, { method: 'DELETE', url: `/execution-logs/${MISSING_ID}`, headers: { 'content-type': 'application/json' } });
  t.equal(empty.statusCode, 404, 'read like any other delete');
  await expectProblem(
    t,
    400,
    { method: 'DELETE', url: `/execution-logs/${MISSING_ID}`, headers: { 'content-type': 'application/json' }, payload: '{"x":' },
    'broken JSON',
  );
  await expectProblem(t, 415, { method: 'DELETE', url: `/execution-logs/${MISSING_ID}`, headers: { 'content-type': 'text/plain' }, payload: 'x' }, 'not JSON');
  await expectProblem(
    t,
    413,
    { method: 'DELETE', url: `/execution-logs/${MISSING_ID}`, headers: { 'content-type': 'application/json' }, payload: `"${'x'.repeat(1024 * 1024)}"` },
    'over 1 MiB',
  );
});

t.test('bodies over 1 MiB, or too deeply nested', async (t) => {
  for (const { path, method, operationId } of withBody) {
    const json = { 'content-type': typeOf(operationId) };
    const url = urlOf(path);
    const verb = method.toUpperCase() as 'POST';
    const big = JSON.stringify({ ...validBodies[operationId], name: 'x'.repeat(1024 * 1024) });
    await expectProblem(t, 413, { method: verb, url, headers: json, payload: big }, `${operationId}: 1 MiB`);
    const deep = `{"name": ${'['.repeat(MAX_NESTING + 1)}${']'.repeat(MAX_NESTING + 1)}}`;
    const nested = await expectProblem(t, 400, { method: verb, url, headers: json, payload: deep }, `${operationId}: nested`);
    t.match(nested.data.detail, /deeper than 64 levels/);
  }
});

t.test('unknown fields, wrong types, long strings and control characters name the field', async (t) => {
  for (const { path, method, operationId } of withBody) {
    const json = { 'content-type': typeOf(operationId) };
    const url = urlOf(path);
    const verb = method.toUpperCase() as 'POST';
    const body = validBodies[operationId]!;
    const unknown = await expectProblem(t, 400, { method: verb, url, headers: json, payload: { ...body, surprise: 1 } }, `${operationId}: unknown field`);
    t.match(unknown.data.errors, [{ in: 'body', pointer: '/surprise' }]);
    const [field, value] = Object.entries(body).find(([, v]) => typeof v === 'string') ?? Object.entries(body)[0]!;
    const wrong = typeof value === 'string' ? 12 : 'twelve';
    const withWrong = { method: verb, url, headers: json, payload: { ...body, [field]: wrong } };
    if (takesAnyJson(operationId, field)) {
      const taken = await call(app, acme, withWrong);
      t.ok(taken.statusCode < 300, `${operationId}: ${field} takes any JSON, a ${typeof wrong} too: ${taken.statusCode}`);
      continue;
    }
    const wrongType = await expectProblem(t, 400, withWrong, `${operationId}: ${field} as a ${typeof wrong}`);
    t.match(wrongType.data.errors, [{ in: 'body', pointer: `/${field}` }], 'not coerced');
    // Long strings and control characters, where the operation has a string field of its own.
    if (typeof value !== 'string') continue;
    await expectProblem(
      t,
      400,
      { method: verb, url, headers: json, payload: { ...body, [field]: `${value}${'y'.repeat(10_000)}` } },
      `${operationId}: long ${field}`,
    );
    await expectProblem(
      t,
      400,
      { method: verb, url, headers: json, payload: { ...body, [field]: `${value}\u0007\u001b[31m` } },
      `${operationId}: control characters in ${field}`,
    );
    await expectProblem(t, 400, { method: verb, url, headers: json, payload: { ...body, [field]: `${value}\u0000` } }, `${operationId}: NUL in ${field}`);
  }
});

t.test('ids that are not UUIDs answer 400', async (t) => {
  for (const { path, method, operationId } of withId) {
    const forms = ['urn:uuid:01a20000-0000-7000-8000-000000000000', '%7B01a20000-0000-7000-8000-000000000000%7D', '01a200000000700080000000000000000'];
    for (const id of ['abc', '1', "1'%20OR%20'1'='1", '%F0%9F%98%80', 'x'.repeat(5000), '01a20000-0000-7000-8000-00000000000g', ...forms]) {
      const payload = method === 'put' ? validBodies[operationId] : undefined;
      const response = await expectProblem(
        t,
        400,
        { method: method.toUpperCase() as 'GET', url: path.replace('{id}', id), payload },
        `${operationId}: id ${id.slice(0, 20)}`,
      );
      t.match(response.data.errors, [{ in: 'path', pointer: '/id' }]);
    }
  }
});

t.test('bad paging and filters answer 400', async (t) => {
  for (const { path, operationId } of operations.filter(
    (op) => op.method === 'get' && op.operation.parameters?.some((p: { $ref?: string }) => p.$ref?.endsWith('/Limit')),
  )) {
    for (const query of [
      'limit=0',
      'limit=101',
      'limit=abc',
      'limit=1.5',
      'limit=1e309',
      'limit=-1',
      'cursor=',
      'cursor=%00',
      'cursor=not-a-cursor',
      `cursor=${'A'.repeat(300)}`,
      'unknown=1',
    ]) {
      await expectProblem(t, 400, { method: 'GET', url: `${path}?${query}` }, `${operationId}?${query}`);
    }
  }
  await expectProblem(t, 400, { method: 'GET', url: '/execution-logs?flowId=nope' }, 'flowId');
  await expectProblem(t, 400, { method: 'GET', url: '/execution-logs?executionId=a%20b' }, 'executionId');
  await expectProblem(t, 400, { method: 'GET', url: '/actions?toolId=1' }, 'toolId');
  for (const query of ['status=done', 'status=skipped', 'flowId=nope', 'createdAfter=yesterday', 'createdBefore=2026-13-01T00:00:00Z', 'createdAfter=']) {
    await expectProblem(t, 400, { method: 'GET', url: `/executions?${query}` }, `/executions?${query}`);
  }
  for (const version of ['0', '-1', 'x', '1.5', '2147483648']) {
    const response = await expectProblem(t, 400, { method: 'GET', url: `/flows/${flow.id}/versions/${version}` }, `version ${version}`);
    t.match(response.data.errors, [{ in: 'path', pointer: '/version' }]);
  }
  for (const body of [{ input: [] }, { input: 'x' }, { version: 0 }, { version: 'latest' }, { input: {}, extra: 1 }]) {
    await expectProblem(t, 400, { method: 'POST', url: `/flows/${flow.id}/executions`, payload: body }, `start ${JSON.stringify(body)}`);
  }
  const ignored = await call(app, acme, {
    method: 'POST',
    url: `/flows/${flow.id}/executions`,
    payload: {},
    headers: { prefer: 'handling=lenient, wait=soon' },
  });
  t.equal(ignored.statusCode, 202, 'preferences it does not know, or cannot read, are ignored (RFC 7240)');
  t.equal(ignored.headers['preference-applied'], undefined);
});

t.test('tenant headers that are too long or not UUIDs answer 401, naming the header', async (t) => {
  for (const value of ['x'.repeat(8000), 'ääää', '01a20000-0000-7000-8000-000000000000 ', '', 'urn:uuid:01a20000-0000-7000-8000-000000000000']) {
    const response = await call(app, undefined, { method: 'GET', url: '/tools', headers: { 'x-org-id': value, 'x-user-id': acme.userId } });
    t.equal(response.statusCode, 401, value.slice(0, 20));
    t.match(response.data.detail, /X-Org-ID must be an id/);
  }
});

t.test('a 1 MiB body full of mistakes gets a small answer that says how many there were', async (t) => {
  const MiB = 1024 * 1024;
  const fill = (prefix: string, item: (i: number) => string, suffix: string) => {
    const parts: string[] = [];
    let length = prefix.length + suffix.length;
    for (let i = 0; length + item(i).length + 1 < MiB; i++) {
      parts.push(item(i));
      length += item(i).length + 1;
    }
    return prefix + parts.join(',') + suffix;
  };
  let biggest = { ratio: 0, label: '' };
  for (const { path, method, operationId } of withBody) {
    const json = { 'content-type': typeOf(operationId) };
    const url = urlOf(path);
    const verb = method.toUpperCase() as 'POST';
    const valid = JSON.stringify(validBodies[operationId]).slice(1, -1);
    const bodies: Record<string, string> = {
      'unknown fields': fill(`{${valid},`, (i) => `"u${i}":0`, '}'),
      'one long unknown name': `{${valid},"${'n'.repeat(MiB - valid.length - 20)}":0}`,
    };
    if (operationId === 'createFlow' || operationId === 'updateFlow') bodies['invalid steps'] = fill('{"name":"F","steps":[', () => '0', ']}');
    if (operationId === 'createAction' || operationId === 'updateAction')
      bodies['invalid header names'] = fill(`{${valid},"headers":{`, (i) => `"bad name ${i}":"v"`, '}}');
    for (const [kind, payload] of Object.entries(bodies)) {
      const label = `${operationId}: ${kind}`;
      const response = await expectProblem(t, 400, { method: verb, url, headers: json, payload }, label);
      t.ok(response.data.errors.length <= 20, `${label}: at most 20 errors listed`);
      t.ok(response.data.errorCount >= response.data.errors.length, `${label}: errorCount says how many in all`);
      if (response.data.errorCount > 20) t.match(response.data.detail, /and \d+ more/, `${label}: the detail says so too`);
      t.ok(response.body.length <= 64 * 1024, `${label}: ${response.body.length} bytes`);
      const ratio = response.body.length / payload.length;
      if (ratio > biggest.ratio) biggest = { ratio, label };
    }
  }
  t.ok(biggest.ratio < 0.1, `the biggest answer is ${(biggest.ratio * 100).toFixed(2)}% of its request (${biggest.label})`);
});

t.test('what cannot be stored exactly is refused, naming the field', async (t) => {
  for (const { path, method, operationId } of withBody) {
    const json = { 'content-type': typeOf(operationId) };
    const url = urlOf(path);
    const verb = method.toUpperCase() as 'POST';
    const body = validBodies[operationId]!;
    const stringPath = firstString(body);
    const field = stringPath.at(-1)!;
    const text = JSON.stringify(body).replace(`"${field}":"`, `"${field}":"\\ud800`);
    const lone = await expectProblem(t, 400, { method: verb, url, headers: json, payload: text }, `${operationId}: an unpaired surrogate in ${field}`);
    t.match(lone.data.errors, [{ in: 'body', pointer: `/${stringPath.join('/')}`, message: /unpaired UTF-16 surrogate/ }]);
    const bytes = Buffer.concat([Buffer.from(JSON.stringify(body).slice(0, -2)), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const utf8 = await expectProblem(t, 400, { method: verb, url, headers: json, payload: bytes }, `${operationId}: bytes that are not UTF-8`);
    t.match(utf8.data.detail, /not valid UTF-8/);
  }
  for (const number of ['1e309', '-1e309', '9007199254740993', '123456789012345678901234567890', '0.1000000000000000000001', '1e-400']) {
    const payload = `{"name":"F","steps":[{"key":"a","actionId":"${action.id}","inputs":{"n":[1,${number}]}}]}`;
    const response = await expectProblem(
      t,
      400,
      { method: 'POST', url: '/flows', headers: { 'content-type': 'application/json' }, payload },
      `a number ${number}`,
    );
    t.match(response.data.errors, [{ in: 'body', pointer: '/steps/0/inputs/n/1', message: /cannot hold exactly/ }]);
  }
  const key = await expectProblem(
    t,
    400,
    {
      method: 'POST',
      url: '/flows',
      headers: { 'content-type': 'application/json' },
      payload: `{"name":"F","steps":[{"key":"a","actionId":"${action.id}","inputs":{"a\\udc00b":1}}]}`,
    },
    'a name with an unpaired surrogate',
  );
  t.match(key.data.errors, [{ in: 'body', pointer: '/steps/0/inputs/a\\udc00b', message: /name with an unpaired/ }]);
});

t.test('numbers and strings that can be stored come back exactly as their values were sent', async (t) => {
  const inputs =
    '{"max":9007199254740992,"sum":0.30000000000000004,"big":1.5e300,"tiny":5e-324,"whole":1.0,"exp":1E2,"zero":-0,"id":"12345678901234567890","emoji":"\\ud83d\\ude00","g17":0.10000000000000001,"float":173763843118602454564864}';
  const created = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    headers: { 'content-type': 'application/json' },
    payload: `{"name":"Exact","steps":[{"key":"a","actionId":"${action.id}","inputs":${inputs}}]}`,
  });
  t.equal(created.statusCode, 201);
  const read = await call(app, acme, { method: 'GET', url: `/flows/${created.data.id}` });
  t.same(read.data.steps[0].inputs, {
    max: 9007199254740992,
    sum: 0.30000000000000004,
    big: 1.5e300,
    tiny: 5e-324,
    whole: 1,
    exp: 100,
    zero: 0,
    id: '12345678901234567890',
    emoji: '😀',
    g17: 0.1,
    float: 1.7376384311860245e23,
  });
  t.match(
    read.body,
    /"max":9007199254740992,"sum":0\.30000000000000004,"big":1\.5e\+300,"tiny":5e-324,"whole":1,"exp":100,"zero":0,/,
    'the values, in their shortest spelling',
  );
  await call(app, acme, { method: 'DELETE', url: `/flows/${created.data.id}` });
});

t.test('nothing was written by any of it', async (t) => {
  t.same(await counts(), before);
});

t.test('keys such as __proto__ are plain data, kept exactly as sent at any depth (a schemathesis finding)', async (t) => {
  const inputs = '{"__proto__": {"admin": true}, "a": [1, {"b": {"__proto__": 1}}], "constructor": {"prototype": {"x": 1}}}';
  const created = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    headers: { 'content-type': 'application/json' },
    payload: `{"name": "P", "steps": [{"key": "a", "actionId": "${action.id}", "inputs": ${inputs}}]}`,
  });
  t.equal(created.statusCode, 201);
  const read = await call(app, acme, { method: 'GET', url: `/flows/${created.data.id}` });
  t.equal(JSON.stringify(JSON.parse(read.body).steps[0].inputs), JSON.stringify(JSON.parse(inputs)));
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was touched');
  const top = await call(app, acme, {
    method: 'POST',
    url: '/tools',
    headers: { 'content-type': 'application/json' },
    payload: '{"__proto__": {"admin": true}, "name": "T", "baseUrl": "https://x.io"}',
  });
  t.match(
    top.data.errors,
    [{ in: 'body', pointer: '/__proto__', message: 'is not a known field' }],
    'at the top of a body it is an unknown field like any other',
  );
  await call(app, acme, { method: 'DELETE', url: `/flows/${created.data.id}` });
});

t.test('unicode is welcome where control characters are not', async (t) => {
  const names = ['Ünïcødé ✓', '日本語のツール', 'مرحبا', '🎉🚀', 'Z\u0351\u036b\u0343a\u0364\u0351lgo', 'x'.repeat(200)];
  for (const name of names) {
    const created = await call(app, acme, { method: 'POST', url: '/tools', payload: { name, baseUrl: 'https://x.io' } });
    t.equal(created.statusCode, 201, name);
    t.equal(created.data.name, name, 'kept exactly');
  }
  const emoji = await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'ünï@exämple.com' } });
  t.ok(emoji.statusCode === 201 || emoji.statusCode === 400, 'an internationalised email is either accepted or refused, never a 5xx');
  const multiline = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Doc', description: 'Line one\nLine two\twith a tab' } });
  t.equal(multiline.statusCode, 201, 'descriptions may span lines');
});

t.test('URLs that cannot be decoded answer 400', async (t) => {
  await expectProblem(t, 400, { method: 'GET', url: '/tools/%E0%A4%A' }, 'broken percent-encoding');
});

/** The path of the first string in a body, at any depth. */
function firstString(value: unknown, path: string[] = []): string[] {
  for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
    if (typeof child === 'string') return [...path, name];
    if (child !== null && typeof child === 'object') {
      const found = firstString(child, [...path, name]);
      if (found.length > 0) return found;
    }
  }
  return [];
}
