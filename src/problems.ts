// Every error Tolstoy sends is an RFC 9457 problem document. Handlers throw ProblemError;
// the error and not-found handlers below turn everything else into one too.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { unavailability } from './db/errors.ts';
import type { components } from './generated/openapi.ts';

export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];

const KINDS = {
  'validation-error': { status: 400, title: 'The request is not valid' },
  'malformed-request': { status: 400, title: 'The request cannot be read' },
  forbidden: { status: 403, title: 'Not a member of this organization' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'unprocessable-content': { status: 422, title: 'Unprocessable content' },
  'internal-error': { status: 500, title: 'Internal server error' },
  'service-unavailable': { status: 503, title: 'Service unavailable' },
} as const;

export type ProblemKind = keyof typeof KINDS;

export const PROBLEM_TYPE_BASE = 'https://tolstoy.dev/problems/';

export class ProblemError extends Error {
  readonly kind: ProblemKind;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;

  constructor(kind: ProblemKind, detail: string, errors?: FieldError[], headers: Record<string, string> = {}) {
    super(detail);
    this.kind = kind;
    this.errors = errors;
    this.headers = headers;
  }

  get status(): number {
    return KINDS[this.kind].status;
  }

  toProblem(instance: string): Problem {
    const { status, title } = KINDS[this.kind];
    const problem: Problem = { type: PROBLEM_TYPE_BASE + this.kind, title, status, detail: this.message, instance };
    if (this.errors) problem.errors = this.errors;
    return problem;
  }
}

/** A field of the body that the schema accepts but the data does not (a dangling reference, say). */
export function unprocessable(pointer: string, message: string): ProblemError {
  return new ProblemError('unprocessable-content', `body${pointer}: ${message}`, [{ in: 'body', pointer, message }]);
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

/**
 * The error and not-found handlers. When the database rejects the credentials, `renewDatabase`
 * runs before the answer (a 503 the client retries), so the next request can use new ones.
 */
export function registerProblemHandlers(app: FastifyInstance, renewDatabase?: () => Promise<boolean>): void {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = asProblemError(error);
    if (problem.status === 500) request.log.error({ err: error }, 'request failed');
    if (unavailability(error) === 'AuthenticationFailed' && renewDatabase) {
      const renewed = await renewDatabase().catch((failure: Error) => {
        request.log.error(`re-reading the database credentials failed: ${failure.message}`);
        return false;
      });
      request.log.warn(renewed ? 'the database rejected its credentials; reconnected with the re-read ones' : 'the database rejects its credentials');
    }
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, request, new ProblemError('not-found', `There is no route ${request.method} ${pathOf(request)}.`)));
}

/** Errors Fastify raises before routing (a malformed URL, say). */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, request, asProblemError(error));
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: ProblemError): FastifyReply {
  return reply
    .code(problem.status)
    .headers(problem.headers)
    .type('application/problem+json; charset=utf-8')
    .send(problem.toProblem(pathOf(request)));
}

function pathOf(request: FastifyRequest): string {
  const path = request.url.split('?')[0] ?? '/';
  // Echo a path that is not too long or odd to quote back.
  return path.length <= 2048 ? path : `${path.slice(0, 2048)}…`;
}

const VALIDATION_PARTS: Record<string, FieldError['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

function asProblemError(error: FastifyError): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error.validation) {
    const part = VALIDATION_PARTS[error.validationContext ?? 'body'] ?? 'body';
    // A property name's own failure is reported once, as the propertyNames error.
    const errors = error.validation.filter((issue) => !issue.schemaPath.includes('/propertyNames/')).map((issue) => fieldError(part, issue));
    return new ProblemError('validation-error', errors.map((e) => `${e.in}${e.pointer}: ${e.message}`).join('; '), errors);
  }
  const fromFastify = FASTIFY_ERRORS[error.code];
  if (fromFastify) return new ProblemError(fromFastify, fastifyDetail(error));
  if (unavailability(error)) {
    return new ProblemError('service-unavailable', 'The database cannot serve this request right now; retry later.', undefined, { 'retry-after': '1' });
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProblemError('malformed-request', error.message);
  }
  return new ProblemError('internal-error', 'The server failed to answer this request; it has been logged.');
}

const FASTIFY_ERRORS: Record<string, ProblemKind> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed-request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed-request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_INSTANCE_ALREADY_STARTED: 'internal-error',
  FST_ERR_BAD_URL: 'malformed-request',
  FST_ERR_MAX_PARAM_LENGTH: 'malformed-request',
};

function fastifyDetail(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Send the body as application/json.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The body is larger than 1 MiB.';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is empty; send a JSON object.';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'The body is not valid JSON.';
    default:
      return error.message;
  }
}

interface AjvIssue {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldError(part: FieldError['in'], issue: AjvIssue): FieldError {
  const { keyword, params } = issue;
  let pointer = issue.instancePath;
  let message = issue.message ?? 'is not valid';
  if (keyword === 'required') {
    pointer += `/${escapePointer(String(params.missingProperty))}`;
    message = 'is required';
  } else if (keyword === 'additionalProperties') {
    pointer += `/${escapePointer(String(params.additionalProperty))}`;
    message = 'is not a known field';
  } else if (keyword === 'propertyNames') {
    pointer += `/${escapePointer(String(params.propertyName))}`;
    message = 'is not an allowed name';
  }
  return { in: part, pointer, message };
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}
