// Input schemas: patterns on RE2, what is refused before an action is stored, and the bounded
// cache of compiled schemas.
import t from 'tap';
import { SchemaCompiler, schemaError, Validators } from '../../src/definitions/inputSchemas.ts';

t.test('patterns run in linear time: ^(a+)+$ against 31 characters answers at once', async (t) => {
  const validators = new Validators(10);
  const schema = { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } };
  t.match(validators.check(schema, { name: `${'a'.repeat(30)}!` }), /\/name must match pattern/);
  t.equal(validators.check(schema, { name: 'aaa' }), undefined);
  const keyed = { type: 'object', patternProperties: { '^x-(a+)+$': { type: 'integer' } } };
  t.match(validators.check(keyed, { [`x-${'a'.repeat(30)}`]: 'no' }), /must be integer/);
});

t.test('a schema is refused with a pointer to what RE2 cannot run, or what would keep it from compiling', async (t) => {
  t.match(schemaError({ properties: { a: { pattern: '(a)\\1' } } }), {
    pointer: '/properties/a/pattern',
    message: /RE2 syntax: no backreferences or lookarounds.*invalid escape sequence/,
  });
  t.match(schemaError({ items: [{ patternProperties: { '(?=x)': {} } }] }), { pointer: '/items/0/patternProperties/(?=x)' });
  t.match(schemaError({ properties: { 'a/b': { pattern: '(?!b)' } } }), { pointer: '/properties/a~1b/pattern' });
  t.match(schemaError({ properties: { a: { $ref: 'https://elsewhere.example/schema.json' } } }), {
    pointer: '/properties/a/$ref',
    message: /must refer to a place in this schema/,
  });
  t.match(schemaError({ items: { $ref: '#/$defs/missing' }, $defs: {} }), { pointer: '/items/$ref' });
  t.match(schemaError({ items: { $ref: '#/%E0%A4%A' } }), { pointer: '/items/$ref' }, 'a malformed fragment');
  t.equal(schemaError({ items: { $ref: '#/$defs/a~1b' }, $defs: { 'a/b': { type: 'string' } } }), undefined);
  t.match(schemaError({ $async: true, type: 'object' }), { pointer: '/$async', message: /not supported/ });
  let deep: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < 100; i++) deep = { items: deep };
  t.match(schemaError(deep), { message: 'nests deeper than 64 levels' });
  const expanding = { properties: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, { pattern: '(a{100}){10}' }])) };
  t.match(schemaError(expanding), { pointer: /^\/properties\/p\d+\/pattern$/, message: "brings the schema's patterns to more than 1024 characters" });
  t.equal(schemaError({ const: { pattern: '(a)\\1' }, properties: { pattern: { type: 'string' } } }), undefined, 'data and property names are not patterns');
});

t.test('schemas with the same $id compile side by side, and keep working', async (t) => {
  const validators = new Validators(10);
  const a = {
    $id: 'https://tenant.example/input',
    type: 'object',
    required: ['a'],
    $defs: { n: { type: 'integer' } },
    properties: { a: { $ref: '#/$defs/n' } },
  };
  const b = { $id: 'https://tenant.example/input', type: 'object', required: ['b'] };
  t.equal(validators.check(a, { a: 1 }), undefined);
  t.equal(validators.check(b, { b: 1 }), undefined);
  t.match(validators.check(a, { a: 'x' }), /\/a must be integer/);
  t.match(validators.check(b, {}), /required/);
});

t.test('the cache keeps the most recently used schemas, no more', async (t) => {
  const validators = new Validators(3);
  for (let i = 0; i < 10; i++) t.equal(validators.check({ type: 'object', required: [`p${i}`] }, { [`p${i}`]: 1 }), undefined);
  t.equal(validators.size, 3);
});

t.test('a compiler is renewed, and what it compiled before keeps working', async (t) => {
  const compiler = new SchemaCompiler();
  const first = compiler.compile({ type: 'string', pattern: '^a+$' });
  for (let i = 0; i < 450; i++) compiler.compile({ type: 'string', pattern: `^b${i}$` });
  t.equal(first('aaa'), true);
  t.equal(first('b'), false);
});
