// A flow's templates checked when it is saved, without evaluating them: the template is walked as
// JSON-e renders it (json-e/src/index.js, 4.8.4), each operator's shape checked as JSON-e checks
// it, and each expression in it parsed and its references checked (templateExpressions.ts). A
// mistake found here would fail every run that reached it; what depends on the run's data (a
// field of a step's output, say) is left for the run to find.
import { escapePointer } from '../contract/problems.ts';
import { expressionProblems, type Scope, type StepKeys, type TokenBudget } from './templateExpressions.ts';

export { FLOW_EXPRESSION_TOKENS, type StepKeys, TokenBudget, TooManyTokens } from './templateExpressions.ts';

/** A mistake at `pointer`, relative to the template. */
export interface TemplateProblem {
  pointer: string;
  message: string;
}

/** JSON-e's operators, in the order it looks for them. */
export const OPERATORS = [
  '$eval',
  '$flatten',
  '$flattenDeep',
  '$fromNow',
  '$if',
  '$json',
  '$let',
  '$map',
  '$reduce',
  '$find',
  '$match',
  '$switch',
  '$merge',
  '$mergeDeep',
  '$reverse',
  '$sort',
];
// What JSON-e takes for an operator: any other `$name` key is refused by it (written `$$name` for a literal key).
const OPERATOR_LIKE = /^\$[a-zA-Z][a-zA-Z0-9]*$/;
const EACH = /^each\(([a-zA-Z_][a-zA-Z0-9_]*)(,\s*([a-zA-Z_][a-zA-Z0-9_]*))?\)$/;
const EACH_OF_REDUCE = /^each\(([a-zA-Z_][a-zA-Z0-9_]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)(,\s*([a-zA-Z_][a-zA-Z0-9_]*))?\)$/;
const BY = /^by\(([a-zA-Z_][a-zA-Z0-9_]*)\)$/;
const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The mistakes of a template (an action's inputs, a transform, a sub-flow's input, the flow's output) that sees `steps`. */
export function templateProblems(template: unknown, steps: StepKeys, budget: TokenBudget): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  walk(template, '', { steps, budget, names: new Set() }, problems);
  return problems;
}

/** The mistakes of a field that is one expression: a condition, a forEach's items, a sleep's until. */
export function conditionProblems(condition: string, steps: StepKeys, budget: TokenBudget): string[] {
  return expressionProblems(condition, { steps, budget, names: new Set() }).problems;
}

type Problems = TemplateProblem[];

function walk(template: unknown, pointer: string, scope: Scope, problems: Problems): void {
  if (typeof template === 'string') interpolation(template, pointer, scope, problems);
  else if (Array.isArray(template)) {
    template.forEach((item, index) => {
      walk(item, `${pointer}/${index}`, scope, problems);
    });
  } else if (template !== null && typeof template === 'object') object(template as Record<string, unknown>, pointer, scope, problems);
}

function object(template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  const operators = OPERATORS.filter((operator) => Object.hasOwn(template, operator));
  if (operators.length > 1) problems.push({ pointer, message: `has the operators ${operators.join(' and ')}; an object may have only one` });
  else if (operators.length === 1) operator(operators[0]!, template, pointer, scope, problems);
  else {
    for (const [key, value] of Object.entries(template)) {
      const at = `${pointer}/${escapePointer(key)}`;
      if (OPERATOR_LIKE.test(key)) problems.push({ pointer: at, message: unknownOperator(key) });
      else if (!key.startsWith('$$')) interpolation(key, at, scope, problems, 'its key ');
      walk(value, at, scope, problems);
    }
  }
}

function unknownOperator(key: string): string {
  return `is not a JSON-e operator: ${key} is none of ${OPERATORS.join(', ')} (a key that begins with $ is written $${key})`;
}

/** Every `${…}` of a string (`$${` escapes one), as JSON-e's interpolate finds them. */
function interpolation(text: string, pointer: string, scope: Scope, problems: Problems, what = ''): void {
  let rest = text;
  for (let offset = rest.search(/\$?\$\{/); offset !== -1; offset = rest.search(/\$?\$\{/)) {
    if (rest[offset + 1] === '$') {
      rest = rest.slice(offset + 3);
      continue;
    }
    const source = rest.slice(offset + 2);
    const parsed = expressionProblems(source, scope, '}');
    for (const message of parsed.problems) problems.push({ pointer, message: `${what}\${${shown(source, parsed.end)}: ${message}` });
    rest = source.slice(parsed.end);
  }
}

function expression(source: unknown, pointer: string, scope: Scope, problems: Problems): void {
  if (typeof source !== 'string') {
    problems.push({ pointer, message: 'must be a string: a JSON-e expression' });
    return;
  }
  for (const message of expressionProblems(source, scope).problems) problems.push({ pointer, message: `\`${shown(source)}\` ${message}` });
}

// An expression quoted in a message: its first 100 characters.
function shown(source: string, end = source.length): string {
  const text = source.slice(0, end);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

function operator(name: string, template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  const at = (key: string) => `${pointer}/${escapePointer(key)}`;
  const value = template[name];
  const unexpected = unexpectedKeys(template, name);
  if (unexpected) {
    problems.push({ pointer, message: unexpected });
    return;
  }
  if (name === '$eval') expression(value, at(name), scope, problems);
  else if (name === '$if') ifBlock(template, pointer, scope, problems);
  else if (name === '$let') letBlock(template, pointer, scope, problems);
  else if (name === '$map' || name === '$find' || name === '$reduce') loop(name, template, pointer, scope, problems);
  else if (name === '$match' || name === '$switch') conditions(name, value, at(name), scope, problems);
  else if (name === '$sort') sort(template, pointer, scope, problems);
  else {
    // $flatten, $flattenDeep, $fromNow (and its `from`), $json, $merge, $mergeDeep, $reverse: templates whose values they use.
    walk(value, at(name), scope, problems);
    if (name === '$fromNow' && Object.hasOwn(template, 'from')) walk(template.from, at('from'), scope, problems);
  }
}

function ifBlock(template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  const at = (key: string) => `${pointer}/${escapePointer(key)}`;
  expression(template.$if, at('$if'), scope, problems);
  for (const key of ['$then', '$else']) {
    if (Object.hasOwn(template, key)) problems.push({ pointer: at(key), message: `is spelled ${key.slice(1)} (no $) in an $if` });
  }
  for (const key of ['then', 'else']) if (Object.hasOwn(template, key)) walk(template[key], at(key), scope, problems);
}

// The other keys each operator allows, as JSON-e's checkUndefinedProperties reads them (its
// pattern is anchored only at its end, and is matched as it is so that nothing it accepts is refused).
const ALLOWED: Record<string, string[]> = {
  $fromNow: ['from'],
  $if: ['then', 'else'],
  $let: ['in'],
  $map: [EACH.source.slice(1, -1)],
  $reduce: ['initial', EACH_OF_REDUCE.source.slice(1, -1)],
  $find: [EACH.source.slice(1, -1)],
  $sort: [BY.source.slice(1, -1)],
};

const TAKES: Record<string, string> = {
  $fromNow: 'from',
  $if: 'then and else',
  $let: 'in',
  $map: 'each(item) or each(item, index)',
  $reduce: 'initial and each(accumulator, item) or each(accumulator, item, index)',
  $find: 'each(item) or each(item, index)',
  $sort: 'by(item)',
};

function unexpectedKeys(template: Record<string, unknown>, name: string): string | undefined {
  const allowed = new RegExp(`${[`\\${name}`, ...(ALLOWED[name] ?? [])].join('|')}$`);
  const unknown = Object.keys(template).filter((key) => !allowed.test(key));
  return unknown.length === 0 ? undefined : `has keys that ${name} does not take: ${unknown.sort().join(', ')} (it takes ${TAKES[name] ?? 'no other'})`;
}

/** `$let`: the names its object binds (known when its keys are written out) are seen by `in`. */
function letBlock(template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  const bindings = template.$let;
  if (bindings === null || typeof bindings !== 'object' || Array.isArray(bindings)) {
    problems.push({ pointer: `${pointer}/$let`, message: 'must be an object: the names $let binds and their values' });
    return;
  }
  walk(bindings, `${pointer}/$let`, scope, problems);
  const keys = Object.keys(bindings);
  // Computed names (an operator, a `${…}` in a key) are known only when the template runs.
  const computed = keys.some((key) => key.startsWith('$') || key.includes('${'));
  for (const key of keys) {
    if (!computed && !IDENTIFIER.test(key))
      problems.push({ pointer: `${pointer}/$let/${escapePointer(key)}`, message: 'is not a name $let can bind: letters, digits and _, not first a digit' });
  }
  if (template.in === undefined || template.in === null) {
    problems.push({ pointer, message: 'has no `in`: the template that sees the names $let binds' });
    return;
  }
  walk(template.in, `${pointer}/in`, computed ? { ...scope, names: 'any' } : withNames(scope, keys), problems);
}

/** `$map`, `$find`, `$reduce`: a value, and a body under `each(…)` that sees the names it binds. */
function loop(name: string, template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  walk(template[name], `${pointer}/${name}`, scope, problems);
  const reduce = name === '$reduce';
  const keys = Object.keys(template);
  if (keys.length !== (reduce ? 3 : 2)) {
    problems.push({ pointer, message: reduce ? 'must have $reduce, initial and each(accumulator, item)' : `must have ${name} and each(item)` });
    return;
  }
  const each = keys.find((key) => key !== name && key !== 'initial') ?? '';
  const match = (reduce ? EACH_OF_REDUCE : EACH).exec(each);
  if (!match) {
    problems.push({
      pointer: `${pointer}/${escapePointer(each)}`,
      message: `must be written each(${reduce ? 'accumulator, item' : 'item'}) or with an index after them`,
    });
    return;
  }
  const names = [match[1], match[2], match[3], match[4]].filter((bound): bound is string => bound !== undefined && IDENTIFIER.test(bound));
  const body = `${pointer}/${escapePointer(each)}`;
  // $find's body is an expression; the others' a template. $reduce's `initial` is used as it is.
  if (name === '$find') expression(template[each], body, withNames(scope, names), problems);
  else walk(template[each], body, withNames(scope, names), problems);
}

/** `$match`, `$switch`: an object whose keys are conditions and whose values are templates. */
function conditions(name: string, value: unknown, pointer: string, scope: Scope, problems: Problems): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ pointer, message: `must be an object: conditions and the templates ${name} chooses by them` });
    return;
  }
  for (const [condition, template] of Object.entries(value)) {
    const at = `${pointer}/${escapePointer(condition)}`;
    if (!(name === '$switch' && condition === '$default')) {
      for (const message of expressionProblems(condition, scope).problems)
        problems.push({ pointer: at, message: `its condition \`${shown(condition)}\` ${message}` });
    }
    walk(template, at, scope, problems);
  }
}

function sort(template: Record<string, unknown>, pointer: string, scope: Scope, problems: Problems): void {
  walk(template.$sort, `${pointer}/$sort`, scope, problems);
  const by = Object.keys(template).find((key) => key !== '$sort');
  const match = by === undefined ? null : BY.exec(by);
  if (by !== undefined && match) expression(template[by], `${pointer}/${escapePointer(by)}`, withNames(scope, [match[1]!]), problems);
}

function withNames(scope: Scope, names: string[]): Scope {
  return scope.names === 'any' ? scope : { ...scope, names: new Set([...scope.names, ...names]) };
}
