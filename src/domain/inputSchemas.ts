// An action's inputSchema is a tenant's JSON Schema (draft 2020-12), compiled by AJV the same way
// when the action is written (to refuse what cannot be compiled) and when a step's inputs are
// checked (in the evaluator process, src/engine/evaluation.ts).
//
// Its regular expressions (`pattern`, `patternProperties`) run on RE2 through re2js, a pure
// JavaScript port of RE2 whose matching is linear in the input: `^(a+)+$`, which backtracks for
// 40 s on 31 characters with JavaScript's engine, answers at once. RE2 has no backreferences or
// lookarounds; a pattern that uses them is refused when the action is written. The native `re2`
// binding needs an install script that does not run here, and detectors of dangerous patterns
// (safe-regex2, recheck) miss some and refuse good ones; an engine that cannot backtrack settles it.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { LRUCache } from 'lru-cache';
import { RE2JS } from 're2js';

// AJV builds every pattern with this (the `code` string serves only AJV's standalone code).
const re2 = Object.assign((pattern: string) => RE2JS.compile(pattern), { code: 'require("re2js").RE2JS.compile' });

// AJV keeps something of every schema it compiles (about 11 KB each, measured) even once the
// schema is removed, so a compiler is replaced after this many compilations.
const COMPILATIONS_PER_AJV = 200;

function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: false, code: { regExp: re2 } });
  addFormats.default(ajv);
  return ajv;
}

/** Compiles tenants' schemas, none registered with another (two may have the same `$id`). */
export class SchemaCompiler {
  #ajv = newAjv();
  #compilations = 0;

  compile(schema: Record<string, unknown>): ValidateFunction {
    if (++this.#compilations > COMPILATIONS_PER_AJV) {
      this.#ajv = newAjv();
      this.#compilations = 1;
    }
    try {
      const validate = this.#ajv.compile(schema);
      // An asynchronous validator answers a promise, which would pass every input.
      if ((validate as { $async?: boolean }).$async) throw new Error('$async schemas are not supported');
      return validate;
    } finally {
      // The compiled function keeps what it needs; the registry forgets the schema and its $id.
      this.#ajv.removeSchema(schema);
    }
  }
}

/** What is wrong with a schema that passed the meta-schema: a JSON Pointer into it and why; undefined when it compiles. */
export function schemaError(schema: Record<string, unknown>, compiler: SchemaCompiler): { pointer: string; message: string } | undefined {
  for (const { pointer, pattern } of patternsOf(schema)) {
    try {
      RE2JS.compile(pattern);
    } catch (error) {
      return {
        pointer,
        message: `is not a pattern Tolstoy can run in linear time (RE2 syntax: no backreferences or lookarounds): ${(error as Error).message}`,
      };
    }
  }
  try {
    compiler.compile(schema);
  } catch (error) {
    return { pointer: '', message: `cannot be compiled: ${(error as Error).message}` };
  }
  return undefined;
}

// Keywords whose values are data, not schemas: a "pattern" inside them is not one.
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);

/** Every `pattern` and `patternProperties` key of a schema, with its JSON Pointer (a loop, not recursion: schemas may be deep). */
function patternsOf(schema: Record<string, unknown>): { pointer: string; pattern: string }[] {
  const found: { pointer: string; pattern: string }[] = [];
  const stack: [unknown, string][] = [[schema, '']];
  while (stack.length > 0) {
    const [node, pointer] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      const at = `${pointer}/${escaped(key)}`;
      if (Array.isArray(node)) {
        stack.push([value, at]);
        continue;
      }
      if (DATA_KEYWORDS.has(key)) continue;
      if (key === 'pattern' && typeof value === 'string') found.push({ pointer: at, pattern: value });
      if (key === 'patternProperties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const name of Object.keys(value)) found.push({ pointer: `${at}/${escaped(name)}`, pattern: name });
      }
      stack.push([value, at]);
    }
  }
  return found;
}

// A key as a JSON Pointer token (RFC 6901).
function escaped(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The actions' input schemas, compiled once each, the `size` most recently used kept. */
export class Validators {
  readonly #compiler = new SchemaCompiler();
  readonly #compiled: LRUCache<string, ValidateFunction>;

  constructor(size: number) {
    this.#compiled = new LRUCache({ max: size });
  }

  /** How many compiled schemas are kept. */
  get size(): number {
    return this.#compiled.size;
  }

  /** A sentence naming what does not match, or undefined; throws when the schema cannot be compiled. */
  check(schema: Record<string, unknown>, value: unknown): string | undefined {
    const text = JSON.stringify(schema);
    let validate = this.#compiled.get(text);
    if (!validate) {
      validate = this.#compiler.compile(schema);
      this.#compiled.set(text, validate);
    }
    if (validate(value)) return undefined;
    return (validate.errors ?? [])
      .slice(0, 5)
      .map(
        (error) =>
          `${error.instancePath || '/'} ${error.message ?? 'is not valid'}${error.keyword === 'required' ? ` (${String(error.params.missingProperty)})` : ''}`,
      )
      .join('; ');
  }
}
