// Responses are serialized from the response schemas; a free-form document inside them is written
// whole. Either way the text must be what the schema allows, and a document exactly what was kept.
import t from 'tap';
import { serializerCompiler } from '../../src/http/serialization.ts';
import { document } from '../contract.ts';

const JsonObject = (document.components as { schemas: Record<string, object> }).schemas.JsonObject!;
const schema = {
  type: 'object',
  required: ['name', 'inputs'],
  properties: { name: { type: 'string' }, inputs: JsonObject, steps: { type: 'array', items: { type: 'object', properties: { inputs: JsonObject } } } },
};
const serialize = serializerCompiler({ schema, method: 'GET', url: '/', httpStatus: '200' }) as (value: unknown) => string;

t.test('a free-form document is written exactly as JSON.stringify writes it', async (t) => {
  const inputs = JSON.parse('{"__proto__":{"polluted":true},"text":"Grüße \\u2028 ✓","nested":{"list":[1,null,{"deep":[[]]}],"empty":{}},"n":-0.5e-7}');
  const text = serialize({ name: 'x', inputs, steps: [{ inputs }] });
  t.equal(text, JSON.stringify({ name: 'x', inputs, steps: [{ inputs }] }));
  t.same(Object.keys(JSON.parse(text).inputs), ['__proto__', 'text', 'nested', 'n'], '__proto__ stays data');
});

t.test('declared objects still carry only what the schema declares', async (t) => {
  t.equal(serialize({ name: 'x', inputs: {}, secret: 'kept out', steps: [{ inputs: {}, extra: 1 }] }), '{"name":"x","inputs":{},"steps":[{"inputs":{}}]}');
});

t.test('the schema given to the serializer is not changed', async (t) => {
  t.same(schema.properties.inputs, JsonObject);
  t.equal((JsonObject as { type: string }).type, 'object');
});
