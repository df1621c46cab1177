// What a person reads when a request does not fit the spec's schemas: one error per field, naming
// the field by its JSON Pointer and saying in words what is expected. AJV reports every keyword
// that failed in its own terms ("must match pattern …", "must NOT have additional properties"),
// and the failures of every branch of a oneOf; this keeps the most useful one per field and words
// it from the schema: the allowed values, the known fields, and for a pattern the schema's own
// `x-pattern-description` (a regular expression is no message; the contract test requires one
// beside every pattern).
import type { ErrorObject } from 'ajv';
import { escapePointer, type FieldError } from '../contract/problems.ts';

type Issue = ErrorObject<string, Record<string, unknown>, unknown> & { propertyName?: string };
type Schema = Record<string, unknown>;

/**
 * The first `limit` field errors of AJV's `issues` (validated with `verbose`, so each carries its
 * schema), and how many fields failed in all. Only those listed are worded: a body of a million
 * mistakes costs one pass over them.
 */
export function fieldErrors(part: FieldError['in'], issues: Issue[], limit: number): { errors: FieldError[]; count: number } {
  const listed = new Map<string, Issue>();
  const failed = new Set<string>();
  for (const issue of resolveAlternatives(issues)) {
    // A property name's own failure is worded by its propertyNames error.
    if (issue.schemaPath.includes('/propertyNames/')) continue;
    const pointer = pointerOf(issue);
    failed.add(pointer);
    const known = listed.get(pointer);
    if (known ? rankOf(issue) < rankOf(known) : listed.size < limit) listed.set(pointer, issue);
  }
  return { errors: [...listed].map(([pointer, issue]) => ({ in: part, pointer, message: messageOf(issue, issues) })), count: failed.size };
}

// When a field fails several keywords, the first of these is the one worth reading: a wrong type
// makes the rest moot, an empty string is better called empty than said to miss a pattern.
const RANKS = ['type', 'required', 'additionalProperties', 'propertyNames', 'enum', 'const', 'oneOf', 'anyOf', 'minLength', 'format', 'maxLength', 'pattern'];

function rankOf(issue: Issue): number {
  const rank = RANKS.indexOf(issue.keyword);
  return rank === -1 ? RANKS.length : rank;
}

/**
 * Of a oneOf or anyOf that failed, keeps the errors of the branch the value came closest to (of
 * its type, fewest errors), so that `{"token": ""}` is told its token is empty rather than
 * every other branch's complaints. A value whose type or shape fits no branch gets one error
 * listing what the branches accept. Alternatives inside a branch are resolved before it is judged.
 */
function resolveAlternatives(issues: Issue[]): Issue[] {
  const alternatives = issues.filter((issue) => issue.keyword === 'oneOf' || issue.keyword === 'anyOf');
  alternatives.sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  const inside = issuesWithin(alternatives, issues);
  const dropped = new Set<Issue>();
  for (const alternative of alternatives) {
    const within = inside.get(alternative)!.filter((issue) => !dropped.has(issue));
    // More than one branch fitting is an error of its own, said as it is: the other branches' errors are beside the point.
    if (alternative.params.passingSchemas) {
      for (const issue of within) dropped.add(issue);
      continue;
    }
    const branches = Map.groupBy(within, (issue) => issue.schemaPath.slice(alternative.schemaPath.length + 1).split('/')[0]!);
    const fitting = [...branches.values()].filter((errors) => !errors.some((issue) => misfits(issue, alternative.instancePath)));
    const closest = new Set(fitting.sort((a, b) => a.length - b.length)[0]);
    for (const issue of within) if (!closest.has(issue)) dropped.add(issue);
    if (closest.size > 0) dropped.add(alternative);
  }
  return issues.filter((issue) => !dropped.has(issue));
}

/**
 * Each alternative's issues: those under its schema path, at its value or inside it. Found from
 * each issue's own paths, not by comparing every issue with every alternative: a body of half a
 * million invalid steps has as many of both.
 */
function issuesWithin(alternatives: Issue[], issues: Issue[]): Map<Issue, Issue[]> {
  const byPlace = new Map<string, Map<string, Issue[]>>();
  for (const { schemaPath } of alternatives) byPlace.set(schemaPath, new Map());
  for (const alternative of alternatives) {
    const byValue = byPlace.get(alternative.schemaPath)!;
    byValue.set(alternative.instancePath, [...(byValue.get(alternative.instancePath) ?? []), alternative]);
  }
  const inside = new Map(alternatives.map((alternative): [Issue, Issue[]] => [alternative, []]));
  for (const issue of issues) {
    for (const schemaPath of prefixesOf(issue.schemaPath).slice(0, -1)) {
      const byValue = byPlace.get(schemaPath);
      if (!byValue) continue;
      for (const instancePath of prefixesOf(issue.instancePath))
        for (const alternative of byValue.get(instancePath) ?? []) inside.get(alternative)!.push(issue);
    }
  }
  return inside;
}

/** A path and every path it is inside: `#/a/b` is in `#/a` and `#`; `/steps/0` is in `/steps` and in the root, the empty path. */
function prefixesOf(path: string): string[] {
  const prefixes: string[] = [];
  for (let end = path.indexOf('/'); end !== -1; end = path.indexOf('/', end + 1)) prefixes.push(path.slice(0, end));
  prefixes.push(path);
  return prefixes;
}

/**
 * Whether the issue says the value at `instancePath` is not of the branch's type or shape (nor of
 * any of its own alternatives). A field too many does not: the branch is then told what it takes.
 */
function misfits(issue: Issue, instancePath: string): boolean {
  return issue.instancePath === instancePath && ['type', 'required', 'const', 'enum', 'oneOf', 'anyOf'].includes(issue.keyword);
}

function pointerOf(issue: Issue): string {
  const { keyword, params, instancePath } = issue;
  const name =
    keyword === 'required' || keyword === 'dependentRequired'
      ? params.missingProperty
      : keyword === 'additionalProperties'
        ? params.additionalProperty
        : keyword === 'propertyNames'
          ? params.propertyName
          : undefined;
  return name === undefined ? instancePath : `${instancePath}/${escapePointer(String(name))}`;
}

function messageOf(issue: Issue, issues: Issue[]): string {
  const { keyword, params } = issue;
  const schema = (issue.parentSchema ?? {}) as Schema;
  switch (keyword) {
    case 'type':
      // Our own checks (a coerced parameter that came out infinite) word their message themselves.
      return params.type === undefined ? (issue.message ?? 'has the wrong type') : `must be ${typesIn(schema.type ?? params.type)}`;
    case 'required':
      return 'is required';
    case 'dependentRequired':
      return `is required with ${String(params.property)}`;
    case 'additionalProperties':
      return knownFields(schema, 'is not a known field');
    case 'propertyNames':
      return `is not an allowed name: it ${nameProblem(issue, issues)}`;
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(shown).join(', ')}`;
    case 'const':
      return `must be ${shown(params.allowedValue)}`;
    case 'pattern':
      return patternMessage(schema);
    case 'format':
      return FORMATS[String(params.format)] ?? `must be a valid ${String(params.format)}`;
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must be at least ${params.limit} characters long`;
    case 'maxLength':
      return `must be at most ${params.limit} characters long`;
    case 'minimum':
      return `must be at least ${params.limit}`;
    case 'maximum':
      return `must be at most ${params.limit}`;
    case 'exclusiveMinimum':
      return `must be more than ${params.limit}`;
    case 'exclusiveMaximum':
      return `must be less than ${params.limit}`;
    case 'multipleOf':
      return `must be a multiple of ${params.multipleOf}`;
    case 'minItems':
      return params.limit === 1 ? 'must not be empty' : `must have at least ${params.limit} items`;
    case 'maxItems':
      return `must have at most ${params.limit} items`;
    case 'uniqueItems':
      return `must not repeat an item (items ${params.j} and ${params.i} are the same)`;
    case 'minProperties':
      return params.limit === 1 ? knownFields(schema, 'must set at least one field') : `must have at least ${params.limit} fields`;
    case 'maxProperties':
      return params.limit === 1 ? knownFields(schema, 'must set at most one field') : `must have at most ${params.limit} fields`;
    case 'oneOf':
    case 'anyOf':
      return alternativesMessage(keyword, (schema[keyword] ?? []) as Schema[]);
    case 'not':
      return 'is not allowed here';
    default:
      return issue.message?.includes('NOT') || issue.message === undefined ? 'is not valid here' : issue.message;
  }
}

const FORMATS: Record<string, string> = {
  uuid: 'must be a UUID, such as 01a20ce5-da80-781f-a8e2-5d940ed90475',
  'date-time': 'must be a date and time with its time zone (RFC 3339), such as 2030-01-01T00:00:00Z',
  date: 'must be a date (RFC 3339), such as 2030-01-01',
  email: 'must be an email address, such as ada@example.com',
  uri: 'must be an absolute URL, such as https://api.example.com',
};

const TYPES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function typesIn(type: unknown): string {
  const names = (Array.isArray(type) ? type : String(type).split(',')).map((name) => TYPES[name] ?? name);
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

function shown(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function knownFields(schema: Schema, message: string): string {
  const names = Object.keys((schema.properties ?? {}) as Schema);
  return names.length === 0 ? message : `${message}; the fields are ${names.join(', ')}`;
}

function patternMessage(schema: Schema): string {
  const expected = schema['x-pattern-description'];
  return typeof expected === 'string' ? `must be ${expected}` : 'is not in the expected form';
}

/** What a property name failed, from the errors of the propertyNames schema for that name. */
function nameProblem(issue: Issue, issues: Issue[]): string {
  const prefix = `${issue.schemaPath}/`;
  const name = issue.params.propertyName;
  const inner = issues
    .filter((other) => other.schemaPath.startsWith(prefix) && other.instancePath === issue.instancePath && other.propertyName === name)
    .sort((a, b) => rankOf(a) - rankOf(b))[0];
  return inner ? messageOf(inner, issues) : 'is not allowed';
}

/**
 * What a oneOf or anyOf takes, in words. Branches that each only require a field (a flow step's
 * kinds: `actionId`, `transform`…) say which of those fields the value must have.
 */
function alternativesMessage(keyword: 'oneOf' | 'anyOf', branches: Schema[]): string {
  const fields = branches.map(requiredOnly);
  if (fields.every((field) => field !== undefined)) return `must have ${keyword === 'oneOf' ? 'exactly' : 'at least'} one of ${fields.join(', ')}`;
  return `must be one of: ${branches.map(branchOf).join('; ')}`;
}

/** The one field a branch requires, when that is all it says (besides its title). */
function requiredOnly(branch: Schema): string | undefined {
  const { required, title, ...rest } = branch;
  return Array.isArray(required) && required.length === 1 && Object.keys(rest).length === 0 ? String(required[0]) : undefined;
}

/** A branch of a oneOf or anyOf in words: its title and fields, or its type. */
function branchOf(branch: Schema): string {
  const alternatives = (branch.oneOf ?? branch.anyOf) as Schema[] | undefined;
  if (branch.title === undefined && alternatives) return alternatives.map(branchOf).join('; ');
  const fields = Object.keys((branch.properties ?? {}) as Schema);
  const title = typeof branch.title === 'string' ? branch.title : typesIn(branch.type ?? 'any value');
  return fields.length > 0 ? `${title} (${fields.join(', ')})` : title;
}
