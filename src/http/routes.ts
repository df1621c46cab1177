// Routes come from the contract: fastify-openapi-glue turns each operation of the spec into a
// Fastify route with the spec's schemas, and we bind it to the domain function of its operationId.
import http from 'node:http';
import { errorCodes, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type HTTPMethods, type RouteOptions } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import type { Authentication, Scope } from '../access/callers.ts';
import { type Caller, isOrganizationOperation, isRead, readerFor, tenantOf } from '../access/tenancy.ts';
import { Answer, type Handlers, type OperationId } from '../contract/handlers.ts';
import { ProblemError } from '../contract/problems.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { DatabaseConnection } from '../db/client.ts';
import type { RunOwner } from '../engine/runs/runs.ts';
import { rejectTooLarge } from '../triggers/intake.ts';
import { sendProblem, TOO_LARGE } from './errors.ts';
import { takesRawBody } from './jsonBody.ts';
import type { AddressLimits, RateLimiter } from './rateLimits.ts';
import { credentialsOf } from './requestCredentials.ts';
import { etagOf } from './rules/preconditions.ts';
import type { OpenApiDocument } from './spec.ts';
import { adaptRequestSchema } from './validation.ts';

// Every method Node's HTTP parser accepts, but CONNECT, which never reaches a route.
const METHODS = http.METHODS.filter((method) => method !== 'CONNECT') as HTTPMethods[];

interface OperationObject {
  operationId: OperationId;
  security?: SecurityRequirement[];
  requestBody?: { required?: boolean; content?: Record<string, unknown> };
  responses: Record<string, ResponseObject>;
}

type SecurityRequirement = Record<string, string[]>;

interface ResponseObject {
  headers?: Record<string, unknown>;
  links?: Record<string, { operationId: string; parameters?: Record<string, string> }>;
}

/** What every operation may use besides the database. */
export interface Services {
  keyring: Keyring;
  runs: RunOwner;
}

export interface OperationsOptions {
  document: OpenApiDocument;
  handlers: Handlers;
  database: DatabaseConnection;
  services: Services;
  authentication: Authentication;
  /** Counts each authenticated request against its caller's limits, when there are some. */
  rateLimiter?: RateLimiter;
  addressLimits?: AddressLimits;
  /** Where the API is reached from outside (TOLSTOY_PUBLIC_URL); each request's own address when unset. */
  publicUrl?: string;
}

type AnyHandler = (input: unknown, context: unknown) => Promise<unknown>;
type Access = 'open' | 'organizations' | 'read' | 'write';

export async function registerOperations(app: FastifyInstance, options: OperationsOptions): Promise<void> {
  const { document, handlers } = options;
  await app.register(async (scope) => {
    scope.addHook('onRoute', adaptRequestSchema);
    refuseAnswerOnlyMediaTypes(scope, document);
    await scope.register(openapiGlue, {
      specification: document,
      operationResolver(operationId: string, method: string, path: string) {
        const operation = document.paths[path]![method.toLowerCase()] as OperationObject;
        const access = accessOf(operation, document.security as SecurityRequirement[]);
        const handler = handlers[operationId as OperationId] as AnyHandler;
        // Glue adds the method, url and schemas from the spec to these options.
        return operationRoute(handler, operation, access, locationOf(document, operation), options);
      },
    });
  });
  registerMethodNotAllowed(app, document);
}

/**
 * Glue warns at every start about each media type of the spec that has no body parser, counting
 * those only answered (problem documents, HTML pages) as if requests were sent in them. Such a
 * type gets a parser that refuses it exactly as an unknown type is refused (415), so that a
 * request body in it is answered as before and the start-up log stays clean.
 */
function refuseAnswerOnlyMediaTypes(scope: FastifyInstance, document: OpenApiDocument): void {
  const mediaTypes = new Set<string>();
  const collect = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      // Examples and schemas may hold fields named `content` that are data, not media types.
      if (['example', 'examples', 'schema'].includes(key)) continue;
      if (key === 'content' && typeof value === 'object' && value !== null) for (const type of Object.keys(value)) mediaTypes.add(type);
      collect(value);
    }
  };
  const components = document.components as Record<string, unknown> | undefined;
  for (const part of [document.paths, components?.responses, components?.requestBodies]) collect(part);
  for (const type of mediaTypes) {
    if (scope.hasContentTypeParser(type)) continue;
    scope.addContentTypeParser(type, { parseAs: 'buffer' }, (request, body, done) =>
      takesRawBody(request) ? done(null, body) : done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(type), undefined),
    );
  }
}

/**
 * What an operation's security requirements ask of its caller: nothing (`[]`), tenant credentials
 * (the tenant headers are one of its ways in), or whatever credentials come, if any (organizations).
 */
function accessOf(operation: OperationObject, security: SecurityRequirement[]): Access {
  const requirements = operation.security ?? security;
  const access: Access =
    requirements.length === 0
      ? 'open'
      : requirements.some((requirement) => 'organization' in requirement)
        ? isRead(operation.operationId)
          ? 'read'
          : 'write'
        : 'organizations';
  // The handlers' context types decide by name (src/contract/handlers.ts); the two must agree.
  if ((access === 'organizations') !== isOrganizationOperation(operation.operationId)) {
    throw new Error(`The security of ${operation.operationId} does not fit its name: ${JSON.stringify(requirements)}.`);
  }
  return access;
}

// Credentials are checked when the request arrives, before its body is read or validated.
function operationRoute(
  handler: AnyHandler,
  operation: OperationObject,
  access: Access,
  location: ((body: unknown) => string) | undefined,
  { database, services, authentication, rateLimiter, addressLimits, publicUrl }: OperationsOptions,
): RouteOptions {
  const status = successStatus(operation);
  const tagged = Object.entries(operation.responses).some(([code, response]) => code.startsWith('2') && response.headers?.ETag);
  const callers = new WeakMap<FastifyRequest, Caller>();
  const scope: Scope = operation.operationId === 'createOrganization' ? 'signup' : access === 'organizations' ? 'organizations' : 'tenant';
  const onRequest = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = await authentication.callerOf(database.current, credentialsOf(request), scope, async () => addressLimits?.keyLookup(request));
    callers.set(request, caller);
    if (scope === 'signup' && caller.kind !== 'operator') await addressLimits?.signup(request);
    await rateLimiter?.(request, reply, caller);
  };
  const contextOf = async (request: FastifyRequest) => {
    const origin = publicUrl ?? `${request.protocol}://${request.host}`;
    const context = { db: database.current, ...services, keys: authentication.keys, origin };
    if (access === 'open') return context;
    const caller = callers.get(request);
    if (caller === undefined) throw new Error('The request reached its handler without being authenticated.');
    if (access === 'organizations') return { ...context, caller, auth: authentication.policy };
    const member = caller as Caller & { kind: 'key' | 'headers' };
    if (access === 'read') return { ...context, reader: readerFor(context.db, member) };
    // A write acts only once the caller is known to be a member.
    return { ...context, tenant: await tenantOf(context.db, member) };
  };
  // A body the operation may go without (`required: false`) is validated as an empty object when
  // none is sent: the schema's defaults and required fields still apply, and no body is no error.
  const optionalBody = operation.requestBody !== undefined && operation.requestBody.required !== true;
  // A body of any media type (`*/*`) is the operation's to read, as it was sent.
  const rawBody = operation.requestBody?.content?.['*/*'] !== undefined;
  const preValidation = async (request: FastifyRequest) => {
    if (request.body === undefined) request.body = {};
  };
  return {
    ...(access !== 'open' && { onRequest }),
    ...(operation.operationId === 'receiveWebhook' && {
      onRequest: async (request: FastifyRequest) => addressLimits?.webhook(request),
      onResponse: async (request: FastifyRequest, reply: FastifyReply) => {
        if (reply.statusCode === 404) addressLimits?.webhookMissed(request);
      },
      // A body too large is refused before the handler runs: it is listed as rejected from here.
      onError: async (request: FastifyRequest, _reply: FastifyReply, error: FastifyError) => {
        if (error.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') return;
        const { token } = request.params as { token: string };
        const query = request.query as Record<string, unknown>;
        await rejectTooLarge(database.current, { token, headers: request.headers, query }, TOO_LARGE).catch((failure: unknown) =>
          request.log.warn({ err: failure }, 'a webhook delivery refused for its size could not be listed'),
        );
      },
    }),
    ...(rawBody && { config: { rawBody } }),
    ...(optionalBody && { preValidation }),
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const input = { params: request.params, query: request.query, headers: request.headers, body: request.body };
      const result = await handler(input, await contextOf(request));
      const answer = result instanceof Answer ? result : new Answer(status, result);
      const code = answer.status ?? status;
      reply.code(code).headers(answer.headers);
      if (location) reply.header('location', location(answer.body));
      if (tagged) reply.header('etag', etagOf(answer.body));
      return code === 204 ? reply.send() : answer.body;
    },
  } as RouteOptions;
}

/**
 * Where a created resource lives, for the Location header: the path of the operation that its
 * response links to as `Get…`, with the link's parameters filled from the response body.
 */
function locationOf(document: OpenApiDocument, operation: OperationObject): ((body: unknown) => string) | undefined {
  const responses = Object.entries(operation.responses).filter(([code, value]) => code.startsWith('2') && value.headers?.Location);
  const link = responses.flatMap(([, value]) => Object.values(value.links ?? {})).find((candidate) => candidate.operationId.startsWith('get'));
  if (!link) return undefined;
  const path = Object.keys(document.paths).find((candidate) =>
    Object.values(document.paths[candidate]!).some((op) => (op as OperationObject).operationId === link.operationId),
  );
  if (!path) throw new Error(`Operation ${operation.operationId} links to ${link.operationId}, which the spec does not define.`);
  const fields = Object.entries(link.parameters ?? {}).map(([name, expression]) => [name, expression.replace('$response.body#/', '')] as const);
  return (body) => fields.reduce((url, [name, field]) => url.replace(`{${name}}`, String((body as Record<string, unknown>)[field])), path);
}

function successStatus(operation: OperationObject): number {
  const status = Object.keys(operation.responses).find((code) => code.startsWith('2'));
  if (!status) throw new Error(`Operation ${operation.operationId} declares no success response.`);
  return Number(status);
}

// Fastify answers an unknown method on a known path with 404; HTTP wants 405 and `Allow`.
function registerMethodNotAllowed(app: FastifyInstance, document: OpenApiDocument): void {
  for (const method of METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }
  for (const [path, item] of Object.entries(document.paths)) {
    const defined = METHODS.filter((method) => method.toLowerCase() in item);
    if (defined.includes('GET')) defined.push('HEAD');
    const allow = defined.join(', ');
    const url = path.replace(/{(\w+)}/g, ':$1');
    app.route({
      method: METHODS.filter((method) => !defined.includes(method)),
      url,
      onRequest: async (request, reply) => {
        return sendProblem(reply, request, new ProblemError('method-not-allowed', `${request.method} is not allowed on ${path}; use ${allow}.`), { allow });
      },
      handler: async () => undefined,
    } satisfies RouteOptions);
  }
}
