// The spec's examples are ones a user can act on: every response, success or error, has one; an
// error's is the document Tolstoy answers for that status (its type, title and detail as the
// problem type's page says); and the ids request examples name are ids that the examples of
// earlier creates answer, so that executed in order (Swagger UI fills in the real ones) they work.
import t from 'tap';
import type { ProblemKind } from '../../src/contract/problems.ts';
import { PROBLEM_TYPE_BASE, PROBLEM_TYPES } from '../../src/resources/problemTypes.ts';
import { operations, resolve } from '../contract.ts';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const dereferenced = (node: any) => (node?.$ref ? resolve(node.$ref) : node);

/** The examples of a media type: its `example`, or the values of its `examples`. */
function examplesOf(media: any): unknown[] {
  if (media.example !== undefined) return [media.example];
  return Object.values(media.examples ?? {}).map((example) => dereferenced(example).value);
}

const responses = operations.flatMap(({ operationId, operation }) =>
  Object.entries(operation.responses).map(([status, response]) => ({ operationId, status, response: dereferenced(response) })),
);

/** Every string of `value` that looks like an id. */
function idsIn(value: unknown): string[] {
  if (typeof value === 'string') return ID.test(value) ? [value] : [];
  if (value && typeof value === 'object') return Object.values(value).flatMap(idsIn);
  return [];
}

t.test('every response with a body has an example', async (t) => {
  for (const { operationId, status, response } of responses) {
    for (const [mediaType, media] of Object.entries<any>(response.content ?? {})) {
      t.ok(examplesOf(media).length > 0, `${operationId} ${status} ${mediaType}`);
    }
  }
});

t.test("every error's example is the problem document Tolstoy answers", async (t) => {
  const kinds = Object.entries(PROBLEM_TYPES) as [ProblemKind, (typeof PROBLEM_TYPES)[ProblemKind]][];
  for (const { operationId, status, response } of responses.filter((r) => !r.status.startsWith('2'))) {
    for (const example of examplesOf(response.content['application/problem+json']) as any[]) {
      const kind = example.type.slice(PROBLEM_TYPE_BASE.length) as ProblemKind;
      const type = PROBLEM_TYPES[kind];
      t.ok(example.type.startsWith(PROBLEM_TYPE_BASE) && type, `${operationId} ${status}: ${example.type} is a problem type`);
      t.equal(example.status, Number(status), `${operationId} ${status}: the status`);
      t.equal(type?.status, Number(status), `${operationId} ${status}: a type of that status`);
      t.equal(example.title, type?.title, `${operationId} ${status}: the type's title`);
      t.equal(example.detail, type?.example.detail, `${operationId} ${status}: the detail its page shows`);
    }
  }
  t.same(
    [...new Set(kinds.map(([, type]) => type.status))].sort(),
    [400, 401, 403, 404, 405, 408, 409, 412, 413, 415, 422, 429, 431, 500, 502, 503],
    'each status has its kinds',
  );
});

t.test('the ids that request examples name are answered by the examples of earlier creates', async (t) => {
  // In the order of the spec, which is the order of the first-call path.
  const created = new Set<string>();
  for (const { operationId, operation } of operations) {
    const bodies = Object.values<any>(operation.requestBody?.content ?? {}).flatMap(examplesOf);
    for (const id of bodies.flatMap(idsIn)) t.ok(created.has(id), `${operationId} names ${id}, which an earlier create answers`);
    if (operation.operationId.startsWith('create') || operation.operationId === 'startExecution') {
      for (const [status, response] of Object.entries<any>(operation.responses)) {
        if (!status.startsWith('2')) continue;
        for (const example of examplesOf(dereferenced(response).content['application/json'])) for (const id of idsIn(example)) created.add(id);
      }
    }
  }
  t.ok(created.size >= 5, 'the organization, its owner, a tool, an action and a flow');
});
