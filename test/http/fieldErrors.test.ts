// Validation messages over the whole contract: for every operation, every field of its body (at
// any depth) and every parameter that has an enum, a pattern, a format, a closed set of fields
// or a minimum of fields gets a value that breaks exactly that, and the answer must name the
// field, say in words what is expected (the allowed values, the known fields, what the pattern
// means, an example of the format), report one error for it, and never quote a regular
// expression or AJV's own wording.
import t, { type Test } from 'tap';
import { document, operations, resolve } from '../contract.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
const ID = '01a20ce5-da80-781f-a8e2-5d940ed90475';
const step = {
  key: 'a',
  actionId: ID,
  inputs: {},
  if: 'true',
  timeoutMs: 1000,
  retry: { maxAttempts: 2, initialDelayMs: 0, maxDelayMs: 0 },
  continueOnError: true,
};
const credentials = [
  { name: 'X-Key', value: 'v', in: 'header' },
  { token: 't' },
  { username: 'u', password: 'p' },
  { tokenUrl: 'https://auth.example.com/token', clientId: 'c', clientSecret: 's', scope: 'read' },
];

// Bodies each operation's schema accepts, together holding every field the schema has.
const tools = credentials.map((value) => ({ name: 'N', description: 'D', baseUrl: 'https://x.io', authType: 'bearer', credentials: value }));
const actions = [{ toolId: tool.id, name: 'N', key: 'k', description: 'D', method: 'GET', endpoint: '/x', headers: { 'X-A': 'b' }, inputSchema: {} }];
// A step of each kind first (the fields of an array's first item are the ones broken), holding steps of its own.
const ofEachKind = [
  { key: 'b', transform: { x: 1 } },
  { key: 'c', switch: { cases: [{ if: 'true', steps: [step] }], default: [{ ...structuredClone(step), key: 'c2' }] } },
  { key: 'd', forEach: { items: 'input.list', concurrency: 2, steps: [step] } },
  { key: 'e', parallel: { branches: { crm: [step] } } },
  { key: 'g', waitFor: { signal: 'approval', timeoutMs: 1000 } },
  { key: 'h', flow: { flowId: ID, version: 1, input: {} } },
];
const flows = [{ name: 'N', description: 'D', steps: [step], output: null }, ...ofEachKind.map((first) => ({ name: 'N', steps: [first] }))];
const logs = [{ flowId: ID, executionId: 'r', stepKey: 's', status: 'queued', inputs: {}, outputs: null, error: { message: 'm', code: 'c' }, durationMs: 1 }];
const users = [{ email: 'a@example.com', name: 'N', role: 'member' }];
const webhook = {
  signature: { scheme: 'hmac-sha256', header: 'X-Sig', prefix: 'sha256=', encoding: 'hex', secret: 'secret-123' },
  respond: 'accepted',
  dedupe: { header: 'X-Id' },
};
const schedule = { cron: '0 2 * * *', timezone: 'UTC', input: {}, catchUp: 'latest', overlap: 'skip' };
const triggers = [{ name: 'N', enabled: true, version: 1, webhook, schedule }];
const subscriptions = [
  { url: 'https://hooks.example.com/in?team=a', description: 'D', events: ['execution.failed', 'trigger.rejected'], flowId: ID, enabled: true },
];
const validBodies: Record<string, Record<string, unknown>[]> = {
  createOrganization: [{ name: 'N', owner: { email: 'a@example.com', name: 'N' } }],
  updateOrganization: [{ name: 'N' }],
  patchOrganization: [{ name: 'N' }],
  createUser: users,
  updateUser: users,
  patchUser: users,
  createApiKey: [{ name: 'N', expiresAt: '2030-01-01T00:00:00Z', userId: ID }],
  createTool: tools,
  updateTool: tools,
  patchTool: tools,
  createAction: actions,
  updateAction: actions,
  patchAction: actions,
  createFlow: flows,
  updateFlow: flows,
  patchFlow: flows,
  createExecutionLog: logs,
  updateExecutionLog: logs,
  patchExecutionLog: logs,
  startExecution: [{ input: {}, version: 1 }],
  signalExecution: [{ payload: { approved: true } }],
  retryExecution: [{ fromStep: 'a', input: {}, version: 1 }, { version: 'latest' }],
  createTrigger: triggers.map((trigger) => ({ flowId: ID, type: 'webhook', ...trigger })),
  updateTrigger: triggers,
  patchTrigger: triggers,
  createSubscription: subscriptions,
  updateSubscription: subscriptions,
  patchSubscription: subscriptions,
};

type Schema = Record<string, any>;
const deref = (schema: Schema): Schema => (schema.$ref ? { ...deref(resolve(schema.$ref)), ...withoutRef(schema) } : schema);
const withoutRef = ({ $ref, ...rest }: Schema) => rest;
// AJV's own words, and the quoting of a pattern, that no message may contain.
const RAW = /must NOT|must match|allowed values|must be equal|\^\[|\[\^|\][+*]\$/;

interface Case {
  label: string;
  pointer: string;
  value: unknown;
  expected: RegExp;
}

/** Values that break one keyword of the field's schema, with what its message must say. */
function breakersOf(schema: Schema, pointer: string, candidates = ['\u0007x', 'x y', 'x']): Case[] {
  const cases: Case[] = [];
  if (schema.enum) {
    const values = schema.enum.map(String).map(escape).join(', ');
    cases.push({ label: 'a value not allowed', pointer, value: 'NOT-ALLOWED', expected: new RegExp(`^must be one of: ${values}$`) });
  }
  if (schema.pattern) {
    const value = candidates.find((candidate) => !new RegExp(schema.pattern, 'u').test(candidate))!;
    const words = schema.format ? FORMAT_WORDS[schema.format] : literally(schema['x-pattern-description'] ?? 'x-pattern-description missing');
    cases.push({ label: 'a value of another form', pointer, value, expected: new RegExp(`^must be ${words}`) });
  }
  if (schema.format)
    cases.push({
      label: `not a ${schema.format}`,
      pointer,
      value: 'not a value of the format',
      expected: new RegExp(`^must be ${FORMAT_WORDS[schema.format]}`),
    });
  return cases;
}

const FORMAT_WORDS: Record<string, string> = {
  uuid: 'a UUID, such as',
  'date-time': 'a date and time .* such as',
  email: 'an email address, such as',
  uri: 'an absolute (http or https )?URL',
};

const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The cases of an object value and its schema: each field's own, and the object's closed set of fields. */
function objectCases(schema: Schema, value: Record<string, unknown>, pointer: string): Case[] {
  schema = branchFor(schema, value);
  const cases: Case[] = [];
  if (schema.additionalProperties === false) {
    const fields = Object.keys(schema.properties).join(', ');
    cases.push({
      label: 'an unknown field',
      pointer: `${pointer}/surprise`,
      value: 1,
      expected: new RegExp(`^is not a known field; the fields are ${fields}$`),
    });
  }
  // A step's kind is the one field of its kind that it has (a oneOf of required fields): another kind's would make it two.
  const otherKinds = (schema.oneOf ?? []).flatMap((branch: Schema) => branch.required ?? []).filter((name: string) => !(name in value));
  for (const [name, property] of Object.entries<Schema>(schema.properties ?? {})) {
    if (otherKinds.includes(name)) continue;
    const field = deref(property);
    cases.push(...breakersOf(field, `${pointer}/${name}`));
    const child = value[name];
    if (child && typeof child === 'object' && !Array.isArray(child) && (field.properties || field.oneOf))
      cases.push(...objectCases(field, child as never, `${pointer}/${name}`));
    if (Array.isArray(child) && field.items) cases.push(...objectCases(field.items, child[0], `${pointer}/${name}/0`));
  }
  return cases;
}

/** The object schema, of a oneOf's branches at any depth, that `value` takes. */
function branchFor(schema: Schema, value: Record<string, unknown>): Schema {
  schema = deref(schema);
  // A oneOf beside the object's own fields only says which of them it has (a flow step's kind).
  if (!schema.oneOf || schema.properties) return schema;
  return schema.oneOf.map((branch: Schema) => branchFor(branch, value)).find((branch: Schema) => fits(branch, value));
}

const fits = (branch: Schema | undefined, value: Record<string, unknown>) =>
  branch !== undefined &&
  (branch.type === 'object' || branch.type?.includes?.('object')) &&
  Object.keys(value).every((name) => name in (branch.properties ?? {})) &&
  (branch.required ?? []).every((name: string) => name in value);

/** The body with `value` at `pointer` (a field set, or an array's first item's). */
function withValue(body: Record<string, unknown>, pointer: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  const names = pointer.slice(1).split('/');
  const parent = names.slice(0, -1).reduce((node: any, name) => node[name], copy);
  parent[names.at(-1)!] = value;
  return copy;
}

const urlOf = (path: string) => path.replace('{id}', ID).replace('{version}', '1').replace('{deliveryId}', ID).replace('{name}', 'approval');

async function expectOneError(t: Test, request: Parameters<typeof call>[2], part: string, { label, pointer, expected }: Case) {
  const response = await call(app, acme, request);
  t.equal(response.statusCode, 400, `${label}: 400`);
  const errors = response.data.errors ?? [];
  t.equal(errors.length, 1, `${label}: one error (${JSON.stringify(errors)})`);
  t.match(errors[0], { in: part, pointer, message: expected }, `${label}: named, and worded`);
  t.notMatch(errors[0]?.message ?? '', RAW, `${label}: in words`);
}

t.test('every body field: its allowed values, its form, the known fields, one error each', async (t) => {
  // A webhook takes any body (test/triggers/webhooks.test.ts).
  const withBody = operations.filter((op) => op.operation.requestBody && !op.operation.requestBody.content['*/*']);
  t.same(withBody.map((op) => op.operationId).sort(), Object.keys(validBodies).sort(), 'a valid body for every operation that takes one');
  let checked = 0;
  for (const { path, method, operationId, operation } of withBody) {
    const [mediaType, content] = Object.entries<Schema>(operation.requestBody.content)[0]!;
    for (const body of validBodies[operationId]!) {
      const request = (payload: unknown) => ({
        method: method.toUpperCase() as 'POST',
        url: urlOf(path),
        headers: { 'content-type': mediaType },
        payload: payload as object,
      });
      for (const one of objectCases(content.schema, body, '')) {
        await expectOneError(t, request(withValue(body, one.pointer, one.value)), 'body', { ...one, label: `${operationId} ${one.pointer}: ${one.label}` });
        checked++;
      }
      const schema = deref(content.schema);
      if (schema.minProperties === 1) {
        const fields = literally(Object.keys(schema.properties).join(', '));
        const empty = {
          label: `${operationId}: an empty body`,
          pointer: '',
          value: {},
          expected: new RegExp(`^must set at least one field; the fields are ${fields}$`),
        };
        await expectOneError(t, request({}), 'body', empty);
        checked++;
      }
    }
  }
  t.ok(checked > 150, `${checked} fields and bodies checked`);
});

t.test('every parameter: its allowed values and its form, one error each', async (t) => {
  let checked = 0;
  for (const { path, method, operationId, operation } of operations) {
    const parameters = [...((document.paths as Schema)[path].parameters ?? []), ...(operation.parameters ?? [])].map(deref);
    for (const parameter of parameters) {
      // A header cannot carry a control character at all.
      const candidates = parameter.in === 'header' ? ['x y', 'x'] : undefined;
      for (const one of breakersOf(deref(parameter.schema), `/${parameter.in === 'header' ? parameter.name.toLowerCase() : parameter.name}`, candidates)) {
        const value = encodeURIComponent(String(one.value));
        const url =
          parameter.in === 'path' ? path.replace(`{${parameter.name}}`, value) : parameter.in === 'query' ? `${path}?${parameter.name}=${value}` : path;
        const body = validBodies[operationId]?.[0];
        const mediaType = Object.keys(operation.requestBody?.content ?? { 'application/json': {} })[0]!;
        const headers = { 'content-type': mediaType, ...(parameter.in === 'header' && { [parameter.name]: String(one.value) }) };
        const request = { method: method.toUpperCase() as 'GET', url: urlOf(url), headers, ...(body && { payload: body }) };
        await expectOneError(t, request, parameter.in, { ...one, label: `${operationId} ${parameter.name}: ${one.label}` });
        checked++;
      }
    }
  }
  t.ok(checked > 40, `${checked} parameters checked`);
});

t.test('every pattern of the contract says in words what it expects', async (t) => {
  const patterns: string[] = [];
  const visit = (node: unknown, where: string) => {
    if (!node || typeof node !== 'object') return;
    const schema = node as Schema;
    if (typeof schema.pattern === 'string' && !Array.isArray(node)) {
      patterns.push(where);
      t.type(schema['x-pattern-description'], 'string', `${where} has an x-pattern-description`);
    }
    for (const [key, child] of Object.entries(schema)) visit(child, `${where}/${key}`);
  };
  visit(resolve('#/components'), '#/components');
  t.ok(patterns.length >= 17, `${patterns.length} patterns`);
});

t.test('a value that fits none of the forms a field takes is told them all', async (t) => {
  const response = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: { credentials: 5 } });
  t.same(response.data.errors, [
    {
      in: 'body',
      pointer: '/credentials',
      message:
        'must be one of: API key credentials (name, value, in); Bearer token credentials (token); Basic credentials (username, password); OAuth 2.0 client credentials (tokenUrl, clientId, clientSecret, scope); null',
    },
  ]);
  const shapeless = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'N', baseUrl: 'https://x.io', credentials: {} } });
  t.match(shapeless.data.errors, [{ pointer: '/credentials', message: /^must be one of: API key credentials/ }]);
  t.equal(shapeless.data.errors.length, 1);
  const close = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'N', baseUrl: 'https://x.io', credentials: { token: '' } } });
  t.same(close.data.errors, [{ in: 'body', pointer: '/credentials/token', message: 'must not be empty' }], 'the form it came closest to tells what is wrong');
});

t.test('the cases of the issue, as a person meets them', async (t) => {
  const cases: [string, object, string, RegExp][] = [
    ['/actions', { toolId: tool.id, name: 'N', key: 'k', method: 'FETCH', endpoint: '/x' }, '/method', /^must be one of: GET, POST, PUT, PATCH, DELETE$/],
    ['/tools', { name: 'N', baseUrl: 'https://x.io', authType: 'token' }, '/authType', /^must be one of: none, apiKey, bearer, basic, oauth2$/],
    ['/tools', { name: 'N', baseUrl: 'localhost:3000' }, '/baseUrl', /^must be an absolute http or https URL .*such as https:\/\/api\.example\.com$/],
    [
      '/actions',
      { toolId: tool.id, name: 'N', key: 'k', method: 'GET', endpoint: 'echo' },
      '/endpoint',
      /^must be a path under the tool's baseUrl beginning with \//,
    ],
    [
      '/tools',
      { name: 'N', baseUrl: 'https://x.io', surpise: 1 },
      '/surpise',
      /^is not a known field; the fields are name, description, baseUrl, authType, credentials, rateLimit$/,
    ],
    ['/flows', { name: 'F', steps: [{ key: 'a', actionId: 'nope' }] }, '/steps/0/actionId', /^must be a UUID, such as /],
    [
      '/actions',
      { toolId: tool.id, name: 'N', key: 'k', method: 'GET', endpoint: '/x', headers: { 'bad name': 'v' } },
      '/headers/bad name',
      /^is not an allowed name: it must be a header name: /,
    ],
  ];
  for (const [url, payload, pointer, message] of cases) {
    const response = await call(app, acme, { method: 'POST', url, payload });
    t.equal(response.statusCode, 400);
    t.match(response.data.errors, [{ in: 'body', pointer, message }], `${url} ${pointer}`);
    t.equal(response.data.errors.length, 1, `${url} ${pointer}: one error`);
    t.match(response.data.detail, `body${pointer}: `, 'the detail names the field too');
  }
  const empty = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: {} });
  t.same(empty.data.errors, [
    { in: 'body', pointer: '', message: 'must set at least one field; the fields are name, description, baseUrl, authType, credentials, rateLimit' },
  ]);
});

t.test('the example of the contract and of the problem type page is what Tolstoy answers', async (t) => {
  const example = resolve('#/components/responses/BadRequest').content['application/problem+json'].example;
  const response = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.id, name: 'N', key: 'k', method: 'FETCH', endpoint: '/x', extra: 1 },
  });
  t.same(response.data.errors, example.errors);
  t.equal(response.data.detail, example.detail);
});
