// The contract itself: valid OpenAPI 3.1, and complete in the ways its users rely on.
import { Validator } from '@seriousme/openapi-schema-validator';
import t from 'tap';
import { handlers } from '../../src/contract/operations.ts';
import { operations, resolve, document as spec } from '../contract.ts';

const document = spec as any;
// Operations anyone may call: the service's index, liveness and readiness, the pages of the problem
// types, and webhooks (whose URL is the secret).
const OPEN = ['getIndex', 'getHealth', 'getReadiness', 'listProblemTypes', 'getProblemType', 'receiveWebhook'];
// Those that never touch the database.
const WITHOUT_DATABASE = ['getIndex', 'getHealth', 'listProblemTypes', 'getProblemType'];

t.test('the spec is valid OpenAPI 3.1', async (t) => {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(document));
  t.same(result.errors, undefined);
  t.ok(result.valid);
  t.equal(validator.version, '3.1');
});

t.test('every operation has a unique operationId, a handler, a tag and a summary', async (t) => {
  const ids = operations.map((op) => op.operationId);
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  t.same(ids.sort(), Object.keys(handlers).sort(), 'handlers cover exactly the operations');
  t.equal(
    ids.filter((id) => !OPEN.includes(id)).length,
    65,
    'the 36 operations of the management API (6 of them PATCH), the 4 of API keys, the 8 of running flows, the 8 of triggers and the 9 of subscriptions',
  );
  for (const { operationId, operation } of operations) {
    t.ok(operation.tags?.length, `${operationId} has a tag`);
    t.ok(operation.summary, `${operationId} has a summary`);
  }
});

const responseOf = (operation: any, status: string) => {
  const response = operation.responses[status];
  return response?.$ref ? resolve(response.$ref) : response;
};
const parametersOf = (path: string, operation: any) =>
  [...(document.paths[path]!.parameters ?? []), ...(operation.parameters ?? [])].map((p: any) => (p.$ref ? resolve(p.$ref) : p));

t.test('every error is a problem document', async (t) => {
  for (const { operationId, operation } of operations) {
    for (const status of Object.keys(operation.responses).filter((s) => !s.startsWith('2'))) {
      const content = responseOf(operation, status).content;
      t.same(Object.keys(content), ['application/problem+json'], `${operationId} ${status}`);
      t.equal(content['application/problem+json'].schema.$ref, '#/components/schemas/Problem', `${operationId} ${status}`);
    }
  }
});

/** The security requirements that apply to an operation: its own, or the document's. */
const securityOf = (operation: any): Record<string, string[]>[] => operation.security ?? resolve('#/security');

t.test('every operation says how its caller authenticates', async (t) => {
  const schemes = resolve('#/components/securitySchemes');
  t.same(Object.keys(schemes).sort(), ['apiKey', 'member', 'organization']);
  t.match(schemes, {
    apiKey: { type: 'http', scheme: 'bearer' },
    organization: { in: 'header', name: 'X-Org-ID' },
    member: { in: 'header', name: 'X-User-ID' },
  });
  for (const { operationId, operation } of operations) {
    const security = securityOf(operation);
    if (OPEN.includes(operationId)) t.same(security, [], `${operationId}: no credentials`);
    else if (operationId === 'createOrganization') t.same(security, [{}, { apiKey: [] }], `${operationId}: sign-up, or the operator token`);
    else if (operationId.endsWith('Organization') || operationId.endsWith('Organizations')) t.same(security, [{ apiKey: [] }, {}], operationId);
    else t.same(security, [{ apiKey: [] }, { organization: [], member: [] }], `${operationId}: a key, or both tenant headers`);
  }
});

t.test('every operation documents the errors it can answer', async (t) => {
  for (const { path, method, operationId, operation } of operations) {
    const statuses = Object.keys(operation.responses);
    const scoped = securityOf(operation).some((requirement) => 'organization' in requirement);
    if (!WITHOUT_DATABASE.includes(operationId)) t.ok(statuses.includes('503'), `${operationId}: 503`);
    t.ok(statuses.includes('400'), `${operationId}: 400, for an unknown query parameter at least`);
    if (securityOf(operation).length > 0) t.ok(statuses.includes('401') && statuses.includes('403'), `${operationId}: 401 and 403`);
    if (path.includes('{id}')) t.ok(statuses.includes('404'), `${operationId}: 404`);
    t.notOk(
      parametersOf(path, operation).some((p: any) => ['x-org-id', 'x-user-id', 'authorization'].includes(p.name.toLowerCase())),
      `${operationId}: credentials are security schemes, not parameters`,
    );
    // A webhook takes its sender's body, whatever its media type, and needs none.
    if (operation.requestBody?.content['*/*']) {
      t.same(Object.keys(operation.requestBody.content), ['*/*'], `${operationId}: any body`);
      t.ok(statuses.includes('413') && statuses.includes('415'), `${operationId}: 413 and 415`);
    } else if (operation.requestBody) {
      // A rerun's body only changes what it runs; without one it goes on where the run stopped.
      // A signal's body is its payload, `null` without one.
      const optional = ['retryExecution', 'signalExecution'].includes(operationId);
      t.equal(operation.requestBody.required === true, !optional, `${operationId}: body ${optional ? 'optional' : 'required'}`);
      const mediaType = method === 'patch' ? 'application/merge-patch+json' : 'application/json';
      t.same(Object.keys(operation.requestBody.content), [mediaType], `${operationId}: a ${mediaType} body`);
      t.ok(statuses.includes('413') && statuses.includes('415'), `${operationId}: 413 and 415`);
    }
    if (scoped) t.notOk(path.startsWith('/organizations'), operationId);
  }
  const scoped = operations.filter(({ operation }) => securityOf(operation).some((requirement) => 'organization' in requirement));
  t.equal(scoped.length, 59, 'the 59 operations outside /organizations act inside one organization');
});

t.test('the webhooks describe what subscriptions send, one per event, and are served by no route', async (t) => {
  const events = resolve('#/components/schemas/SubscriptionEvent').enum as string[];
  t.same(Object.keys(document.webhooks).sort(), [...events].sort());
  for (const [event, item] of Object.entries<any>(document.webhooks)) {
    const { post } = item;
    t.match(post.operationId, /Event$/, `${event}: its operationId ends in Event, which the handlers' types leave out`);
    t.notOk(post.operationId in handlers, `${event}: no handler`);
    t.equal(resolve(post.requestBody.content['application/json'].schema.$ref).properties.type.const, event, `${event}: its body's type`);
    t.same(
      post.parameters.map((parameter: { name: string; in: string }) => `${parameter.in} ${parameter.name}`),
      ['header webhook-id', 'header webhook-timestamp', 'header webhook-signature'],
    );
  }
  t.notOk(
    operations.some(({ path }) => path.includes('.')),
    'no path of the API is an event',
  );
});

t.test('every create links to the get, update and delete of what it created', async (t) => {
  const creates = operations.filter(({ method, operation }) => method === 'post' && operation.responses['201']);
  t.equal(creates.length, 9);
  for (const { path, operationId, operation } of creates) {
    const created = operation.responses['201'];
    t.ok(created.headers?.Location, `${operationId}: Location header`);
    const targets = operations.filter((op) => op.path === `${path}/{id}`).map((op) => op.operationId);
    const byId = Object.values(created.links ?? {}).filter((link: any) => link.parameters?.id === '$response.body#/id' && targets.includes(link.operationId));
    t.same(byId.map((link: any) => link.operationId).sort(), targets.sort(), `${operationId}: links`);
  }
  const byOperationId = new Set(operations.map((op) => op.operationId));
  for (const { operationId, operation } of creates) {
    for (const [name, link] of Object.entries(operation.responses['201'].links) as [string, any][])
      t.ok(byOperationId.has(link.operationId), `${operationId} ${name}`);
  }
});

t.test('starting and retrying a run link to its get, cancel and signal', async (t) => {
  for (const operationId of ['startExecution', 'retryExecution']) {
    const { operation } = operations.find((op) => op.operationId === operationId)!;
    const accepted = operation.responses['202'];
    t.ok(accepted.headers?.Location, `${operationId}: Location header`);
    const linked = Object.values(accepted.links ?? {}).map((link: any) => link.operationId);
    t.same(
      ['getExecution', 'cancelExecution', 'signalExecution'].filter((target) => !linked.includes(target)),
      [],
      `${operationId}: links`,
    );
  }
});

t.test('request bodies refuse unknown fields; updates need at least one', async (t) => {
  for (const [name, schema] of Object.entries(document.components.schemas as Record<string, any>)) {
    if (/(Create|Update)$/.test(name)) t.equal(schema.additionalProperties, false, `${name} is closed`);
    if (name.endsWith('Update')) t.equal(schema.minProperties, 1, `${name} needs a field`);
  }
});
