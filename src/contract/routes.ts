// Routes come from the contract: fastify-openapi-glue turns each operation of the spec into a
// Fastify route with the spec's schemas, and we bind it to the handler of its operationId.
import http from 'node:http';
import openapiGlue from 'fastify-openapi-glue';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RouteOptions } from 'fastify';
import type { DatabaseConnection } from '../db/client.ts';
import { ProblemError, sendProblem } from '../problems.ts';
import { memberResolver, readerOf } from '../tenancy.ts';
import type { Handlers, OperationId } from './operations.ts';
import type { OpenApiDocument } from './spec.ts';
import { adaptRequestSchema } from './validation.ts';

// Every method Node's HTTP parser accepts, but CONNECT, which never reaches a route.
const METHODS = http.METHODS.filter((method) => method !== 'CONNECT') as HTTPMethods[];

interface OperationObject {
  operationId: OperationId;
  parameters?: ParameterObject[];
  responses: Record<string, unknown>;
}

interface ParameterObject {
  $ref?: string;
  name?: string;
  in?: string;
}

export interface OperationsOptions {
  document: OpenApiDocument;
  handlers: Handlers;
  database: DatabaseConnection;
}

export async function registerOperations(app: FastifyInstance, { document, handlers, database }: OperationsOptions): Promise<void> {
  const resolveMember = memberResolver(() => database.current);
  await app.register(async (scope) => {
    scope.addHook('onRoute', adaptRequestSchema);
    await scope.register(openapiGlue, {
      specification: document,
      operationResolver(operationId: string, method: string, path: string) {
        const operation = document.paths[path]![method.toLowerCase()] as OperationObject;
        const scoped = parametersOf(document, path, operation).some((p) => p.in === 'header' && p.name?.toLowerCase() === 'x-org-id');
        const read = method.toUpperCase() === 'GET';
        // Glue adds the method, url and schemas from the spec to these options.
        return {
          ...(scoped && !read && { preHandler: resolveMember }),
          handler: operationHandler(handlers[operationId as OperationId] as AnyHandler, database, successStatus(operation), path, scoped && read),
        } as RouteOptions;
      },
    });
  });
  registerMethodNotAllowed(app, document);
}

type AnyHandler = (input: unknown, context: unknown) => Promise<unknown>;

function operationHandler(handler: AnyHandler, database: DatabaseConnection, status: number, path: string, reads: boolean) {
  return async function (request: FastifyRequest, reply: FastifyReply) {
    const db = database.current;
    const context = reads ? { db, reader: readerOf(request, db) } : { db, tenant: request.tenant };
    const result = await handler({ params: request.params, query: request.query, body: request.body }, context);
    reply.code(status);
    if (status === 201) reply.header('location', `${path}/${(result as { id: string }).id}`);
    return status === 204 ? reply.send() : result;
  };
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
        return sendProblem(reply, request, new ProblemError('method-not-allowed', `${request.method} is not allowed on ${path}; use ${allow}.`, { headers: { allow } }));
      },
      handler: async () => undefined,
    } satisfies RouteOptions);
  }
}
