// One JSON-e expression (a `$eval`, an `$if`, a `${…}`) read when a flow is saved: parsed by
// JSON-e's own parser into a tree, never evaluated, and every name and step it refers to checked.
// Evaluating a template with an empty context to find its mistakes, as was done before, let a
// tenant's `range(0, 150000000)` or nested `$reduce` block the process for seconds and exhaust its
// memory; parsing costs time in proportion to the text, which the body limit bounds. JSON-e's
// parser is internal (json-e/src), hence json-e pinned exactly in package.json: these paths and
// the tokenizer's settings below are those of 4.8.4, copied from its index.js, which does not
// export them.
import addBuiltins from 'json-e/src/builtins.js';
import parser from 'json-e/src/parser.js';
import Tokenizer from 'json-e/src/tokenizer.js';

type Node = NonNullable<ReturnType<InstanceType<typeof parser.Parser>['parse']>>;

const jsonE = new Tokenizer({
  ignore: '\\s+',
  patterns: {
    number: '[0-9]+(?:\\.[0-9]+)?',
    identifier: '[a-zA-Z_][a-zA-Z_0-9]*',
    string: '\'[^\']*\'|"[^"]*"',
    true: 'true(?![a-zA-Z_0-9])',
    false: 'false(?![a-zA-Z_0-9])',
    in: 'in(?![a-zA-Z_0-9])',
    null: 'null(?![a-zA-Z_0-9])',
  },
  tokens: [
    '**',
    ...'+-*/[].(){}:,'.split(''),
    '>=',
    '<=',
    '<',
    '>',
    '==',
    '!=',
    '!',
    '&&',
    '||',
    'true',
    'false',
    'in',
    'null',
    'number',
    'identifier',
    'string',
  ],
});

/**
 * How many tokens of expressions one flow's templates may hold in all. Parsing costs about 1 to
 * 2 µs a token here (JSON-e's tokenizer tries some 30 patterns at each), so a 1 MiB body of
 * expressions would hold the event loop for over a second; this bound keeps a save to a few tens
 * of milliseconds at worst, and is some twenty times what a flow of 100 steps with a few
 * references each needs. A property of the flow document, like its 100 steps, it is not a setting.
 */
export const FLOW_EXPRESSION_TOKENS = 10_000;

/** Thrown when a flow's expressions hold more than FLOW_EXPRESSION_TOKENS tokens. */
export class TooManyTokens extends Error {}

/** The tokens left to one flow's check: JSON-e's tokenizer, counting what it reads. */
export class TokenBudget {
  left = FLOW_EXPRESSION_TOKENS;
  next(source: string, offset?: number) {
    if (this.left-- <= 0) throw new TooManyTokens();
    return jsonE.next(source, offset);
  }
}

/** What every template sees: the run's names and JSON-e's functions (and `now`). */
const GLOBALS = new Set(['input', 'trigger', 'steps', 'execution', 'now', ...Object.keys(addBuiltins({}))]);
const STEP_FIELDS = ['output', 'status', 'httpStatus', 'headers', 'case'];
/** What a template inside a forEach sees besides: the iteration's item and its index. */
const LOOP_NAMES = ['item', 'index'];
const EXECUTION_FIELDS = ['id', 'flowId', 'flowVersion'];
const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** What a template sees of the flow's steps where it is (flowChecks.ts says which steps run before which). */
export interface StepKeys {
  /** Every key of the flow, nested steps' included. */
  all: readonly string[];
  /** The keys of the steps that have run when the template is rendered. */
  visible: ReadonlySet<string>;
  /** The step whose template it is; none for the flow's output. */
  self?: string;
  /** Whether it is rendered inside a forEach's iteration, where it sees `item` and `index` too. */
  inLoop?: boolean;
}

/** The names an expression sees: the globals, those a `$let`, `$map`… binds, or any name at all (a `$let` whose names are computed). */
export interface Scope {
  steps: StepKeys;
  budget: TokenBudget;
  names: ReadonlySet<string> | 'any';
}

export interface Parsed {
  /** What is wrong with the expression, each in words. */
  problems: string[];
  /** With a terminator, where the text after it begins. */
  end: number;
}

/**
 * The problems of the expression at the start of `source`: all of it, or up to `terminator` (the
 * `}` that ends a `${…}`).
 */
export function expressionProblems(source: string, scope: Scope, terminator?: '}'): Parsed {
  try {
    const reader = new parser.Parser(scope.budget, source);
    const tree = reader.parse();
    const next = reader.current_token;
    if (terminator && !next) return { problems: ['`${` is never closed with `}`'], end: source.length };
    if (next && next.kind !== terminator)
      return { problems: [`does not parse: unexpected \`${next.value}\` at character ${next.start + 1}`], end: source.length };
    const problems: string[] = [];
    visit(tree, { source, scope, problems });
    return { problems, end: next ? next.end : source.length };
  } catch (error) {
    return { problems: [parseFailure(error)], end: source.length };
  }
}

function parseFailure(error: unknown): string {
  const { name, message } = error as Error;
  // Stack overflow: parentheses or operators nested by the thousand.
  if (error instanceof RangeError) return 'is nested too deeply';
  if (name === 'SyntaxError') return `does not parse: ${message}`;
  // JSON-e's parser reads past the end of an incomplete expression ("1 +") with a TypeError.
  if (error instanceof TypeError) return 'is incomplete';
  throw error;
}

interface Visit {
  source: string;
  scope: Scope;
  problems: string[];
  /** Set once a key read with a dot was named: what follows it in the source (`-user`) is then not reported again. */
  misread?: boolean;
}

function visit(node: Node | null | undefined, at: Visit): void {
  if (!node) {
    at.problems.push('is incomplete');
    return;
  }
  switch (node.constructorName) {
    case 'ContextValue':
      known(node.token.value, at);
      break;
    case 'BinOp':
      if (node.token.kind === '.') member(node, at);
      else visitAll([node.left, node.right], at);
      break;
    case 'ValueAccess':
      access(node, at);
      break;
    case 'UnaryOp':
      visit(node.expr, at);
      break;
    case 'FunctionCall':
      visit(node.name, at);
      visitAll(node.args ?? [], at);
      break;
    case 'List':
      visitAll(node.list ?? [], at);
      break;
    case 'Object':
      visitAll(Object.values(node.obj ?? {}), at);
      break;
  }
}

function visitAll(nodes: (Node | null | undefined)[], at: Visit): void {
  for (const node of nodes) visit(node, at);
}

function known(name: string, at: Visit): void {
  if (bound(name, at.scope) || GLOBALS.has(name) || at.misread) return;
  if (at.scope.steps.inLoop && LOOP_NAMES.includes(name)) return;
  at.problems.push(
    `refers to \`${name}\`, which no template sees (they see input, trigger, steps, execution, now, item and index inside a forEach, and the names a $let, $map, $reduce, $find or $sort binds)`,
  );
}

function bound(name: string, scope: Scope): boolean {
  return scope.names === 'any' || scope.names.has(name);
}

/** Whether the node is the run's own `name` (`steps`, `execution`), not a local name that hides it. */
function isGlobal(node: Node | null | undefined, name: string, scope: Scope): boolean {
  return node?.constructorName === 'ContextValue' && node.token.value === name && !bound(name, scope);
}

/** `a.b`: only `a` is a reference; `steps.<key>`, `steps.<key>.<field>` and `execution.<field>` are checked. */
function member(node: Node, at: Visit): void {
  const property = node.right?.token.value ?? '';
  if (isGlobal(node.left, 'steps', at.scope)) {
    step(property, at, node.right?.token.start);
    return;
  }
  visit(node.left, at);
  const key = stepOf(node.left, at.scope);
  if (key !== undefined && !STEP_FIELDS.includes(property) && !at.misread) {
    at.problems.push(`reads \`${property}\` of step "${key}", which has only ${STEP_FIELDS.join(', ')}`);
  }
  if (isGlobal(node.left, 'execution', at.scope) && !EXECUTION_FIELDS.includes(property)) {
    at.problems.push(`reads execution.${property}; an execution has only ${EXECUTION_FIELDS.join(', ')}`);
  }
}

/** `steps["get-user"]` refers to a step; other brackets are checked as expressions. */
function access(node: Node, at: Visit): void {
  if (isGlobal(node.arr, 'steps', at.scope) && !node.isInterval && node.left?.token.kind === 'string') step(node.left.token.value.slice(1, -1), at);
  else {
    visit(node.arr, at);
    if (node.left) visit(node.left, at);
    if (node.right) visit(node.right, at);
  }
}

/** The step key of `steps.<key>` or `steps["<key>"]`, when the node is one. */
function stepOf(node: Node | null | undefined, scope: Scope): string | undefined {
  if (node?.constructorName === 'BinOp' && node.token.kind === '.' && isGlobal(node.left, 'steps', scope)) return node.right?.token.value;
  if (node?.constructorName === 'ValueAccess' && isGlobal(node.arr, 'steps', scope) && !node.isInterval && node.left?.token.kind === 'string') {
    return node.left.token.value.slice(1, -1);
  }
  return undefined;
}

/** A reference to the step `key`, written `steps.<key>` from `start` in the source, or in brackets. */
function step(key: string, at: Visit, start?: number): void {
  const { all, visible } = at.scope.steps;
  // `steps.get-user` reads as `steps.get - user`: name the key that was meant.
  const meant = start === undefined ? undefined : longestKeyAt(at.source, start, all, key);
  if (meant !== undefined) {
    const where = visible.has(meant) ? '' : `; ${whereIs(meant, at.scope.steps)}`;
    at.problems.push(`reads steps.${meant} as steps.${key} followed by "${meant.slice(key.length)}": refer to step "${meant}" as steps["${meant}"]${where}`);
    at.misread = true;
    return;
  }
  if (!visible.has(key)) at.problems.push(`refers to step "${key}", ${whereIs(key, at.scope.steps)}`);
}

function longestKeyAt(source: string, start: number, all: readonly string[], read: string): string | undefined {
  const candidates = all.filter((key) => key.length > read.length && !IDENTIFIER.test(key) && source.startsWith(key, start));
  return candidates.sort((a, b) => b.length - a.length)[0];
}

function whereIs(key: string, { all, self }: StepKeys): string {
  if (!all.includes(key)) return 'which this flow does not have';
  if (key === self) return 'which is this step itself: a step sees the steps before it';
  // The output sees every step of the top level: one it does not see is nested in one of them.
  if (self === undefined) return "which runs inside another step: the flow's output sees the steps of its top level";
  return 'which does not run before this step: a template sees the steps before it in its own list and those before the steps that hold it';
}
