// Every error Tolstoy sends is an RFC 9457 problem document. Domain code throws ProblemError;
// the handlers here give each kind its status and turn everything else into a problem too.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type FieldError, invalidFields, MAX_FIELD_ERRORS, ProblemError, type ProblemKind } from '../contract/problems.ts';
import { brokenForeignKey, brokenUniqueConstraint, unavailability } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import { PROBLEM_TYPE_BASE, PROBLEM_TYPES } from '../resources/problemTypes.ts';
import { fieldErrors } from './fieldErrors.ts';
import { challengeOf } from './requestCredentials.ts';

export type Problem = components['schemas']['Problem'];

export function statusOf(problem: ProblemError): number {
  return PROBLEM_TYPES[problem.kind].status;
}

/** The problem document of `problem`, for request `requestId` at `instance`. */
export function problemDocument(problem: ProblemError, requestId: string, instance?: string): Problem {
  const { status, title } = PROBLEM_TYPES[problem.kind];
  const document: Problem = { type: PROBLEM_TYPE_BASE + problem.kind, title, status, detail: problem.message, requestId };
  if (instance !== undefined) document.instance = instance;
  if (problem.errors) {
    document.errors = problem.errors;
    document.errorCount = problem.errorCount ?? problem.errors.length;
  }
  return document;
}

/**
 * The error and not-found handlers. When the database rejects the credentials, `renewDatabase`
 * runs before the answer (a 503 the client retries), so the next request can use new ones.
 */
export function registerProblemHandlers(app: FastifyInstance, renewDatabase?: () => Promise<boolean>): void {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = asProblemError(error);
    if (statusOf(problem) === 500) request.log.error({ err: error }, 'request failed');
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
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, new ProblemError('not-found', `There is no route ${request.method} ${pathOf(request)}.`)),
  );
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
  const requestId = randomUUID();
  const problem = problemDocument(clientErrorProblem(error.code), requestId);
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\nX-Request-Id: ${requestId}\r\n` +
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

export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: ProblemError, headers: Record<string, string> = {}): FastifyReply {
  if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds));
  if (problem.kind === 'unauthorized') reply.header('www-authenticate', challengeOf(request));
  return reply
    .code(statusOf(problem))
    .headers(headers)
    .header('x-request-id', request.id)
    .type('application/problem+json; charset=utf-8')
    .send(problemDocument(problem, request.id, pathOf(request)));
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
    const { errors, count } = fieldErrors(part, error.validation as Parameters<typeof fieldErrors>[1], MAX_FIELD_ERRORS);
    return invalidFields('validation-error', errors, count);
  }
  const fromFastify = FASTIFY_ERRORS[error.code];
  if (fromFastify) return new ProblemError(fromFastify, fastifyDetail(error));
  if (unavailability(error)) {
    return new ProblemError('service-unavailable', 'The database cannot serve this request right now; retry later.', { retryAfterSeconds: 1 });
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

/** Why a body too large is refused. */
export const TOO_LARGE = 'The body is larger than 1 MiB.';

const FASTIFY_ERRORS: Record<string, ProblemKind> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed-request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed-request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_BAD_URL: 'malformed-request',
  FST_ERR_MAX_PARAM_LENGTH: 'malformed-request',
  FST_CP_ERR_INVALID_CONTENT_ENCODING: 'unsupported-media-type',
};

function fastifyDetail(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Send the body as application/json (a PATCH as application/merge-patch+json).';
    case 'FST_CP_ERR_INVALID_CONTENT_ENCODING':
      return 'Send the body uncompressed, without Content-Encoding.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return TOO_LARGE;
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is empty; send a JSON object.';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'The body is not valid JSON.';
    default:
      return error.message;
  }
}
