// Every error Tolstoy sends is an RFC 9457 problem document. Handlers throw ProblemError;
// the error and not-found handlers below turn everything else into one too.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { brokenForeignKey, brokenUniqueConstraint, unavailability } from './db/errors.ts';
import type { components } from './generated/openapi.ts';

export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];

const KINDS = {
  'validation-error': { status: 400, title: 'The request is not valid' },
  'malformed-request': { status: 400, title: 'The request cannot be read' },
  forbidden: { status: 403, title: 'Not a member of this organization' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'request-timeout': { status: 408, title: 'Request timeout' },
  conflict: { status: 409, title: 'Conflict' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'unprocessable-content': { status: 422, title: 'Unprocessable content' },
  'headers-too-large': { status: 431, title: 'Request header fields too large' },
  'internal-error': { status: 500, title: 'Internal server error' },
  'service-unavailable': { status: 503, title: 'Service unavailable' },
} as const;

export type ProblemKind = keyof typeof KINDS;

export const PROBLEM_TYPE_BASE = 'https://tolstoy.dev/problems/';

export interface ProblemDetails {
  /** The failing fields, at most MAX_FIELD_ERRORS of them (see invalidFields). */
  errors?: FieldError[];
  /** How many fields failed, when more than `errors` lists. */
  errorCount?: number;
  headers?: Record<string, string>;
}

export class ProblemError extends Error {
  readonly kind: ProblemKind;
  readonly errors: FieldError[] | undefined;
  readonly errorCount: number | undefined;
  readonly headers: Record<string, string>;

  constructor(kind: ProblemKind, detail: string, { errors, errorCount = errors?.length, headers = {} }: ProblemDetails = {}) {
    super(detail);
    this.kind = kind;
    this.errors = errors;
    this.errorCount = errorCount;
    this.headers = headers;
  }

  get status(): number {
    return KINDS[this.kind].status;
  }

  toProblem(instance?: string): Problem {
    const { status, title } = KINDS[this.kind];
    const problem: Problem = { type: PROBLEM_TYPE_BASE + this.kind, title, status, detail: this.message };
    if (instance !== undefined) problem.instance = instance;
    if (this.errors) {
      problem.errors = this.errors;
      problem.errorCount = this.errorCount ?? this.errors.length;
    }
    return problem;
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

/**
 * The error and not-found handlers. When the database rejects the credentials, `renewDatabase`
 * runs before the answer (a 503 the client retries), so the next request can use new ones.
 */
export function registerProblemHandlers(app: FastifyInstance, renewDatabase?: () => Promise<boolean>): void {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = asProblemError(error);
    if (problem.status === 500) request.log.error({ err: error }, 'request failed');
    const cause = unavailability(error);
    if (cause) request.log.error({ cause, err: error }, 'the database could not serve the request');
    if (cause === 'AuthenticationFailed' && renewDatabase) {
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

/**
 * Errors of Node's HTTP parser, which come before any request exists: headers or a URL too
 * large (431), a request not sent whole in time (408), malformed HTTP (400). Answered on the
 * socket itself, as problem documents like every other error.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const response = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const problem = clientErrorProblem(error.code).toProblem();
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function clientErrorProblem(code: string | undefined): ProblemError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ProblemError('headers-too-large', 'The request line and headers together exceed 16 KiB; send a shorter URL or fewer headers.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ProblemError('request-timeout', 'The request was not received whole in time; send it again.');
    default:
      return new ProblemError('malformed-request', 'The request is not valid HTTP/1.1.');
  }
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
    const issues = error.validation.filter((issue) => !issue.schemaPath.includes('/propertyNames/'));
    return invalidFields('validation-error', issues.slice(0, MAX_FIELD_ERRORS).map((issue) => fieldError(part, issue)), issues.length);
  }
  const fromFastify = FASTIFY_ERRORS[error.code];
  if (fromFastify) return new ProblemError(fromFastify, fastifyDetail(error));
  if (unavailability(error)) {
    return new ProblemError('service-unavailable', 'The database cannot serve this request right now; retry later.', { headers: { 'retry-after': '1' } });
  }
  // Handlers name the refusals they expect; one that slipped past them is a race with a
  // concurrent change, never a server fault. Every tenant-owned row references its organization
  // through <table>_org_id_fkey, so a write that lost that reference raced the organization's deletion.
  const foreignKey = brokenForeignKey(error);
  if (foreignKey?.endsWith('_org_id_fkey')) {
    return new ProblemError('conflict', 'The organization was deleted while this request was being handled.');
  }
  if (foreignKey !== undefined || brokenUniqueConstraint(error) !== undefined) {
    return new ProblemError('conflict', 'A concurrent change to the same data got there first; read the current state and retry.');
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

/** A name as a JSON Pointer segment; an unpaired surrogate, which no UTF-8 answer can carry, is spelled out as \uXXXX. */
export function escapePointer(segment: string): string {
  const escaped = segment.replaceAll('~', '~0').replaceAll('/', '~1');
  return escaped.isWellFormed() ? escaped : escaped.replace(/\p{Cs}/gu, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`);
}
