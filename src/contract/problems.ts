// What can go wrong with a request, in the domain's terms: each kind of problem has a stable
// name (the end of its RFC 9457 type URI), and its status and title in src/resources/problemTypes.ts;
// the HTTP layer (src/http/errors.ts) answers with them, the worker records them as they are.
import type { components } from '../generated/openapi.ts';

export type FieldError = components['schemas']['FieldError'];

/** A kind of problem, as the contract lists them (its pages: src/resources/problemTypes.ts). */
export type ProblemKind = components['schemas']['ProblemKind'];

export interface ProblemDetails {
  /** The failing fields, at most MAX_FIELD_ERRORS of them (see invalidFields). */
  errors?: FieldError[];
  /** How many fields failed, when more than `errors` lists. */
  errorCount?: number;
  /** For a problem that passes (service-unavailable): when to try again. */
  retryAfterSeconds?: number;
}

export class ProblemError extends Error {
  readonly kind: ProblemKind;
  readonly errors: FieldError[] | undefined;
  readonly errorCount: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: ProblemKind, detail: string, { errors, errorCount = errors?.length, retryAfterSeconds }: ProblemDetails = {}) {
    super(detail);
    this.kind = kind;
    this.errors = errors;
    this.errorCount = errorCount;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const MAX_FIELD_ERRORS = 20;
export const MAX_POINTER = 1024;

/**
 * A problem naming the failing fields: at most MAX_FIELD_ERRORS of them, each pointer cut to
 * MAX_POINTER characters, so that a body full of mistakes cannot make an answer many times its
 * size; `errorCount` and the detail say how many there were in all.
 */
export function invalidFields(kind: 'validation-error' | 'unprocessable-content', errors: FieldError[], errorCount = errors.length): ProblemError {
  const listed = errors.slice(0, MAX_FIELD_ERRORS).map((error) => ({ ...error, pointer: shortened(error.pointer) }));
  const summary = listed.map((error) => `${error.in}${error.pointer}: ${error.message}`).join('; ');
  const more = errorCount > listed.length ? `; and ${errorCount - listed.length} more (the first ${listed.length} of ${errorCount} are listed)` : '';
  return new ProblemError(kind, summary + more, { errors: listed, errorCount });
}

function shortened(pointer: string): string {
  return pointer.length <= MAX_POINTER ? pointer : `${pointer.slice(0, MAX_POINTER)}…`;
}

/** A field of the body that the schema accepts but the data does not (a dangling reference, say). */
export function unprocessable(pointer: string, message: string): ProblemError {
  return invalidFields('unprocessable-content', [{ in: 'body', pointer, message }]);
}

export function notFound(what: string, id: string): ProblemError {
  return new ProblemError('not-found', what === 'organization' ? `No organization ${id}.` : `No ${what} ${id} in this organization.`);
}

export function conflict(detail: string): ProblemError {
  return new ProblemError('conflict', detail);
}

/** How many names a message lists before it says "and N more". */
export const LISTED = 5;

/** The first few names of `total`, readable in a sentence. */
export function listed(first: string[], total: number): string {
  const shown = first.slice(0, LISTED).join(', ');
  return total > LISTED ? `${shown} and ${total - LISTED} more` : shown;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** A name as a JSON Pointer segment; an unpaired surrogate, which no UTF-8 answer can carry, is spelled out as \uXXXX. */
export function escapePointer(segment: string): string {
  const escaped = segment.replaceAll('~', '~0').replaceAll('/', '~1');
  return escaped.isWellFormed() ? escaped : escaped.replace(/\p{Cs}/gu, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`);
}
