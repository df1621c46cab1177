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

/**
 * What would keep a schema that passed the meta-schema from compiling: a JSON Pointer into it and
 * why, or undefined. Found by reading it, not by compiling it: AJV takes about a quarter of a
 * millisecond of CPU per subschema (190 ms for 15 KB of patterns, measured), too much to spend on
 * the API's event loop for every write; the evaluator compiles it, within its bounds, when a step
 * first checks inputs against it.
 */
export function schemaError(schema: Record<string, unknown>): { pointer: string; message: string } | undefined {
  const stack: [unknown, string, number][] = [[schema, '', 0]];
  let patternText = 0;
  while (stack.length > 0) {
    const [node, pointer, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > MAX_DEPTH) return { pointer, message: `nests deeper than ${MAX_DEPTH} levels` };
    for (const [key, value] of Object.entries(node)) {
      const at = `${pointer}/${escaped(key)}`;
      if (!Array.isArray(node)) {
        if (DATA_KEYWORDS.has(key)) continue;
        patternText += key === 'pattern' && typeof value === 'string' ? value.length : key === 'patternProperties' ? JSON.stringify(value ?? {}).length : 0;
        if (patternText > MAX_PATTERN_TEXT) return { pointer: at, message: `brings the schema's patterns to more than ${MAX_PATTERN_TEXT} characters` };
        const problem = keywordProblem(schema, key, value);
        if (problem) return { pointer: problem.name === undefined ? at : `${at}/${escaped(problem.name)}`, message: problem.message };
      }
      stack.push([value, at, depth + 1]);
    }
  }
  return undefined;
}

// Deep enough for any real input; much deeper ones overflow the compiler's stack.
const MAX_DEPTH = 64;
// Compiling a pattern costs up to about 0.1 ms of CPU per character (`(a{100}){10}` expands to a
// thousand instructions; measured), on the API's event loop: 1024 characters cost 120 ms at worst.
const MAX_PATTERN_TEXT = 1024;

// Keywords whose values are data, not schemas: a "pattern" inside them is not one.
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);

/** What is wrong with one keyword of a schema object (`name`: the key of patternProperties at fault). */
function keywordProblem(root: Record<string, unknown>, key: string, value: unknown): { name?: string; message: string } | undefined {
  if (key === 'pattern' && typeof value === 'string') return patternProblem(value);
  if (key === 'patternProperties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const name of Object.keys(value)) {
      const problem = patternProblem(name);
      if (problem) return { name, ...problem };
    }
  }
  if (key === '$async' && value === true) return { message: 'is not supported: inputs are checked synchronously' };
  if ((key === '$ref' || key === '$dynamicRef') && typeof value === 'string' && !resolves(root, value))
    return { message: 'must refer to a place in this schema ("#/$defs/name"): nothing else is fetched' };
  return undefined;
}

function patternProblem(pattern: string): { message: string } | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    return { message: `is not a pattern Tolstoy can run in linear time (RE2 syntax: no backreferences or lookarounds): ${(error as Error).message}` };
  }
}

// A JSON Pointer token of a URI fragment (percent-encoded, then ~1 and ~0).
function decodedToken(token: string): string | undefined {
  try {
    return decodeURIComponent(token).replaceAll('~1', '/').replaceAll('~0', '~');
  } catch {
    return undefined;
  }
}

/** Whether a reference is a JSON Pointer fragment that leads somewhere in the schema. */
function resolves(root: Record<string, unknown>, ref: string): boolean {
  if (ref === '#') return true;
  if (!ref.startsWith('#/')) return false;
  let node: unknown = root;
  for (const token of ref.slice(2).split('/')) {
    const name = decodedToken(token);
    if (name === undefined || node === null || typeof node !== 'object' || !Object.hasOwn(node, name)) return false;
    node = (node as Record<string, unknown>)[name];
  }
  return true;
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
