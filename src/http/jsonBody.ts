// JSON request bodies, read so that what is accepted is stored exactly as sent (I-JSON, RFC 7493):
// - the bytes must be UTF-8 (a lenient decoder would turn bad bytes into U+FFFD);
// - no string may hold an unpaired surrogate (PostgreSQL would store U+FFFD instead);
// - every number must be one a 64-bit float holds exactly (1e309 would come back as null,
//   9007199254740993 as 9007199254740992).
// Anything else is refused with a 400 naming the field. Numbers keep their value, not their
// spelling: 1.0 is 1. Keys such as __proto__ stay plain data (JSON.parse makes them own
// properties, and no body is merged into another object). A body nested thousands of levels deep
// parses fine but overflows the stack of every recursive step after it, so it is refused up front.
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import { escapePointer, type FieldError, invalidFields, ProblemError } from '../contract/problems.ts';

export const MAX_NESTING = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The operation takes a body of any media type, as its bytes (a webhook, whose signature covers them). */
    rawBody?: boolean;
  }
}

export function registerJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeAllContentTypeParsers();
  // Any other media type (or none) is refused (415), but by an operation that takes its bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (takesRawBody(request)) done(null, body);
    else done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type'] ?? ''), undefined);
  });
  // A JSON merge patch (RFC 7396) is JSON, read the same way.
  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'buffer' }, (request, body, done) => {
    if (takesRawBody(request)) {
      done(null, body);
      return;
    }
    // Many clients send the header on every request: an operation that takes no body ignores an empty one.
    if ((body as Buffer).length === 0 && !request.routeOptions.schema?.body) {
      done(null, undefined);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new ProblemError('malformed-request', 'The body is not valid UTF-8.'), undefined);
      return;
    }
    if (nestingDepth(text) > MAX_NESTING) {
      done(new ProblemError('malformed-request', `The body nests objects and arrays deeper than ${MAX_NESTING} levels.`), undefined);
      return;
    }
    parse(request, text, (error, value) => {
      const unfaithful = error ? [] : unfaithfulFields(text, value);
      done(unfaithful.length > 0 ? invalidFields('validation-error', unfaithful) : error, value);
    });
  });
}

export function takesRawBody(request: FastifyRequest): boolean {
  return request.routeOptions.config?.rawBody === true;
}

/**
 * A JSON text read as the API reads JSON bodies (UTF-8, nested at most MAX_NESTING deep, every
 * value kept faithfully); a 400 problem naming what is wrong otherwise.
 */
export function parseJson(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ProblemError('malformed-request', 'The body is not valid UTF-8.');
  }
  if (nestingDepth(text) > MAX_NESTING) throw new ProblemError('malformed-request', `The body nests objects and arrays deeper than ${MAX_NESTING} levels.`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProblemError('malformed-request', `The body is not valid JSON: ${(error as Error).message}.`);
  }
  const unfaithful = unfaithfulFields(text, value);
  if (unfaithful.length > 0) throw invalidFields('validation-error', unfaithful);
  return value;
}

/** How deeply arrays and objects nest in a JSON text; brackets inside strings do not count. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // a backslash escapes the next character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x7b || char === 0x5b) {
      deepest = Math.max(deepest, ++depth);
    } else if (char === 0x7d || char === 0x5d) {
      depth--;
    }
  }
  return deepest;
}

// Only a number with 16 or more digits, or a three-digit exponent, can miss a float; only an
// escape (\ud800…\udfff) can put a surrogate into a UTF-8 text. Most bodies have neither, and
// skip the slower checks below. Both tests also match inside strings: that costs time, never a
// wrong answer.
const LONG_NUMBER = /[0-9][0-9.]{15}|[eE][+-]?[0-9]{3}/;
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** The fields of a parsed JSON text that would not be stored exactly as sent. */
export function unfaithfulFields(text: string, value: unknown): FieldError[] {
  const errors: FieldError[] = [];
  if (LONG_NUMBER.test(text)) {
    const marked = JSON.parse(text, (_key, parsed, context?: { source?: string }) =>
      typeof parsed === 'number' && context?.source !== undefined && !isExact(context.source, parsed) ? INEXACT : parsed,
    );
    visit(marked, '', (node, pointer) => {
      if (node === INEXACT) errors.push({ in: 'body', pointer, message: 'is a number that a 64-bit float cannot hold exactly; send it as a string' });
    });
  }
  if (SURROGATE_ESCAPE.test(text)) {
    visit(value, '', (node, pointer, key) => {
      if (key !== undefined && !key.isWellFormed())
        errors.push({ in: 'body', pointer, message: 'is a name with an unpaired UTF-16 surrogate, which cannot be stored' });
      if (typeof node === 'string' && !node.isWellFormed())
        errors.push({ in: 'body', pointer, message: 'holds an unpaired UTF-16 surrogate, which cannot be stored' });
    });
  }
  return errors;
}

const INEXACT = Symbol('inexact number');

function visit(node: unknown, pointer: string, see: (node: unknown, pointer: string, key?: string) => void, key?: string): void {
  see(node, pointer, key);
  if (node === null || typeof node !== 'object') return;
  for (const [name, child] of Object.entries(node)) visit(child, `${pointer}/${escapePointer(name)}`, see, name);
}

/**
 * Whether a JSON number literal says no more than the float parsed from it: a literal of n
 * significant digits must be that float rounded to n digits. So 0.1, 0.10000000000000001 and
 * 173763843118602454564864 (exactly a float, which JavaScript spells 1.7376384311860245e+23)
 * pass; 9007199254740993 (it parses to 9007199254740992) and 1e309 (Infinity) do not.
 */
export function isExact(literal: string, parsed: number): boolean {
  if (!Number.isFinite(parsed)) return false;
  const value = decimal(literal);
  const digits = value.digits.length;
  if (digits === 0) return true;
  // toPrecision stops at 100 digits; a longer literal must be the float's exact value.
  return sameDecimal(value, digits <= 100 ? decimal(parsed.toPrecision(digits)) : exactDecimal(parsed));
}

// A finite float's exact value: its 53-bit mantissa times a power of two, written in decimal
// (m × 2^-k is m × 5^k × 10^-k).
function exactDecimal(float: number): Decimal {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(float));
  const bits = view.getBigUint64(0);
  const biased = Number(bits >> 52n);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const power = (biased === 0 ? 1 : biased) - 1075;
  const text = power >= 0 ? `${mantissa << BigInt(power)}` : `${mantissa * 5n ** BigInt(-power)}e${power}`;
  return { ...decimal(text), negative: float < 0 };
}

interface Decimal {
  digits: string;
  exponent: number;
  negative: boolean;
}

// A number's decimal value as significant digits (no leading or trailing zeros) times a power of ten.
function decimal(text: string): Decimal {
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text) ?? [];
  const all = whole + fraction;
  const lead = all.length - all.replace(/^0+/, '').length;
  const digits = all.slice(lead).replace(/0+$/, '');
  return { digits, exponent: Number(exponent) - fraction.length + (all.length - lead - digits.length), negative: sign === '-' };
}

function sameDecimal(a: Decimal, b: Decimal): boolean {
  // Zero is zero whatever its sign or exponent.
  if (a.digits === '' || b.digits === '') return a.digits === b.digits;
  return a.digits === b.digits && a.exponent === b.exponent && a.negative === b.negative;
}
