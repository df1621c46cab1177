// The spec lints clean with the ruleset in openapi/redocly.yaml, and every example in it is an
// instance of its schema.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { document, resolve, schemaViolation } from '../contract.ts';

t.test('Redocly CLI finds no error and no warning', async (t) => {
  const run = promisify(execFile);
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const result = await run('node_modules/.bin/redocly', ['lint', 'openapi/openapi.yaml', '--config', 'openapi/redocly.yaml', '--format=stylish'], {
    env,
  }).catch((error) => error);
  t.equal(result.code ?? 0, 0, `${result.stdout}${result.stderr}`);
  t.notMatch(`${result.stdout}${result.stderr}`, /\b(error|warning)\b/i);
});

interface Found {
  pointer: string;
  value: unknown;
}

// Every example of the spec with the schema it illustrates: media type and parameter `example`s,
// Example objects' `value`s, and schemas' own `examples`.
function examples(node: unknown, pointer = ''): Found[] {
  if (node === null || typeof node !== 'object') return [];
  const found: Found[] = [];
  const object = node as Record<string, unknown>;
  if ('example' in object && 'schema' in object) found.push({ pointer: `${pointer}/schema`, value: object.example });
  if (object.examples && !Array.isArray(object.examples) && 'schema' in object) {
    for (const example of Object.values(object.examples as Record<string, { value?: unknown; $ref?: string }>))
      found.push({ pointer: `${pointer}/schema`, value: example.$ref ? resolve(example.$ref).value : example.value });
  }
  if (Array.isArray(object.examples) && ('type' in object || '$ref' in object)) for (const value of object.examples) found.push({ pointer, value });
  for (const [key, child] of Object.entries(object)) {
    if (key !== 'example' && key !== 'examples') found.push(...examples(child, `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`));
  }
  return found;
}

t.test('every example validates against its schema', async (t) => {
  const found = examples(document);
  const bodies = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, any>)
      .filter(([, operation]) => operation?.requestBody)
      .map(([method, operation]) => {
        const mediaType = Object.keys(operation.requestBody.content)[0]!.replaceAll('/', '~1');
        return `/paths/${path.replaceAll('/', '~1')}/${method}/requestBody/content/${mediaType}/schema`;
      }),
  );
  for (const body of bodies)
    t.ok(
      found.some((example) => example.pointer === body),
      `${body} has an example a newcomer can send as it is`,
    );
  for (const { pointer, value } of found) t.equal(schemaViolation(pointer, value), undefined, pointer);
});
