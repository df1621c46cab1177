// Routes come from the contract: fastify-openapi-glue turns each operation of the spec into a
// Fastify route with the spec's schemas, and we bind it to the domain function of its operationId.
import http from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RouteOptions } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import type { DatabaseConnection } from '../db/client.ts';
import { Answer, type Handlers, type OperationId } from '../domain/contract.ts';
import type { Keyring } from '../domain/credentials.ts';
import { ProblemError } from '../domain/problems.ts';
import type { Runs } from '../domain/runs.ts';
import { assertMember, isRead, readerFor } from '../domain/tenancy.ts';
import { sendProblem } from './errors.ts';
import type { OpenApiDocument } from './spec.ts';
import { tenantOf } from './tenancy.ts';
import { adaptRequestSchema } from './validation.ts';

// Every method Node's HTTP parser accepts, but CONNECT, which never reaches a route.
const METHODS = http.METHODS.filter((method) => method !== 'CONNECT') as HTTPMethods[];

interface OperationObject {
  operationId: OperationId;
  parameters?: ParameterObject[];
  responses: Record<string, ResponseObject>;
}

interface ResponseObject {
  headers?: Record<string, unknown>;
  links?: Record<string, { operationId: string; parameters?: Record<string, string> }>;
}

interface ParameterObject {
  $ref?: string;
  name?: string;
  in?: string;
}

/** What every operation may use besides the database. */
export interface Services {
  keyring: Keyring;
  runs: Runs;
}

export interface OperationsOptions {
  document: OpenApiDocument;
  handlers: Handlers;
  database: DatabaseConnection;
  services: Services;
}

export async function registerOperations(app: FastifyInstance, { document, handlers, database, services }: OperationsOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRoute', adaptRequestSchema);
    await scope.register(openapiGlue, {
      specification: document,
      operationResolver(operationId: string, method: string, path: string) {
        const operation = document.paths[path]![method.toLowerCase()] as OperationObject;
        const scoped = parametersOf(document, path, operation).some((p) => p.in === 'header' && p.name?.toLowerCase() === 'x-org-id');
        const handler = handlers[operationId as OperationId] as AnyHandler;
        // Glue adds the method, url and schemas from the spec to these options.
        const access = scoped ? (isRead(operationId) ? 'read' : 'write') : 'open';
        return { handler: operationHandler(handler, database, services, operation, access, locationOf(document, operation)) } as RouteOptions;
      },
    });
  });
  registerMethodNotAllowed(app, document);
}

type AnyHandler = (input: unknown, context: unknown) => Promise<unknown>;
type Access = 'open' | 'read' | 'write';

function operationHandler(
  handler: AnyHandler,
  database: DatabaseConnection,
  services: Services,
  operation: OperationObject,
  access: Access,
  location: ((body: unknown) => string) | undefined,
) {
  const status = successStatus(operation);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const db = database.current;
    const input = { params: request.params, query: request.query, headers: request.headers, body: request.body };
    const result = await handler(input, await contextOf(request, { db, ...services }, access));
    const answer = result instanceof Answer ? result : new Answer(status, result);
    reply.code(answer.status).headers(answer.headers);
    if (location) reply.header('location', location(answer.body));
    return answer.status === 204 ? reply.send() : answer.body;
  };
}

async function contextOf(request: FastifyRequest, services: Services & { db: DatabaseConnection['current'] }, access: Access) {
  if (access === 'open') return services;
  const tenant = tenantOf(request);
  if (access === 'read') return { ...services, reader: readerFor(services.db, tenant) };
  // A write acts only once the caller is known to be a member.
  await assertMember(services.db, tenant);
  return { ...services, tenant };
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

function parametersOf(document: OpenApiDocument, path: string, operation: OperationObject): ParameterObject[] {
  const shared = (document.paths[path]!.parameters ?? []) as ParameterObject[];
  return [...shared, ...(operation.parameters ?? [])].map((parameter) => (parameter.$ref ? resolvePointer(document, parameter.$ref) : parameter));
}

function resolvePointer(document: OpenApiDocument, ref: string): ParameterObject {
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key.replaceAll('~1', '/').replaceAll('~0', '~')], document) as ParameterObject;
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
