// The HTTP application: the contract's operations, its documentation, and problem+json errors.
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Authentication } from '../access/callers.ts';
import type { AuthSettings, HttpSettings } from '../config/settings.ts';
import { handlers } from '../contract/operations.ts';
import type { DatabaseConnection } from '../db/client.ts';
import type { Metrics } from '../observability/metrics.ts';
import { traceRequests } from '../observability/tracing.ts';
import { AccessLog, lazyChildLogger } from './accessLog.ts';
import { registerDocumentation } from './documentation.ts';
import { answerClientError, answerFrameworkError, registerProblemHandlers } from './errors.ts';
import { registerJsonBodies } from './jsonBody.ts';
import { registerRateLimits } from './rateLimits.ts';
import { requestIdOf } from './requestId.ts';
import { registerOperations, type Services } from './routes.ts';
import { serializerCompiler } from './serialization.ts';
import { type Contract, loadContract } from './spec.ts';
import { validatorCompiler } from './validation.ts';

export interface AppOptions {
  database: DatabaseConnection;
  services: Services;
  logger?: FastifyServerOptions['loggerInstance'];
  contract?: Contract;
  /** How long a client may take to send a whole request. */
  requestTimeoutMs?: number;
  /** Who may call; by default the development settings (tenant headers trusted, open sign-up). */
  auth?: AuthSettings;
  /** Rate limits and CORS; by default neither. */
  http?: HttpSettings;
  /** Where requests are counted and timed, when metrics are on. */
  metrics?: Metrics;
  /** Whether requests are traced (OpenTelemetry is exporting). */
  tracing?: boolean;
}

export const UNLIMITED: HttpSettings = {
  rateLimits: { perKey: 0, perOrganization: 0, keyLookupsPerAddress: 0, signupsPerAddress: 0, webhooksPerTrigger: 0, windowMs: 60_000 },
  corsOrigins: [],
  publicUrl: undefined,
};

/** Headers a browser page may read from an answer, when CORS lets it call. */
const EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'X-Request-Id',
  'Idempotent-Replayed',
  'Preference-Applied',
  'Retry-After',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'WWW-Authenticate',
];

export const DEVELOPMENT_AUTH: AuthSettings = { mode: 'headers', signup: true, adminToken: undefined, keyCacheMs: 5000 };

export const BODY_LIMIT = 1024 * 1024;

export async function buildApp({
  database,
  services,
  logger,
  contract = loadContract(),
  requestTimeoutMs = 30_000,
  auth = DEVELOPMENT_AUTH,
  http = UNLIMITED,
  metrics,
  tracing = false,
}: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger
      ? { loggerInstance: logger, logController: new AccessLog(logger, { requestIdLogLabel: 'requestId' }), childLoggerFactory: lazyChildLogger }
      : { logger: false }),
    bodyLimit: BODY_LIMIT,
    // While shutting down, requests on open connections are still served: the pool closes after.
    return503OnClosing: false,
    // A client trickling a request in (or stalling mid-upload) is answered 408 and let go; Node
    // looks for such clients every 30 s unless told to look more often.
    requestTimeout: requestTimeoutMs,
    http: { connectionsCheckingInterval: Math.min(5000, Math.max(250, requestTimeoutMs / 4)) },
    // Long path parameters reach validation, which names them, instead of the router's 414.
    routerOptions: { maxParamLength: 16 * 1024 },
    frameworkErrors: answerFrameworkError,
    // The request id is the caller's X-Request-Id when well-formed (requestIdOf).
    requestIdHeader: false,
    genReqId: requestIdOf,
    clientErrorHandler: answerClientError,
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  closeConnectionsWhenClosing(app);
  if (metrics) timeRequests(app, metrics);
  if (tracing) traceRequests(app);
  app.setValidatorCompiler(validatorCompiler());
  app.setSerializerCompiler(serializerCompiler);
  registerJsonBodies(app);
  registerProblemHandlers(app, () => database.renew());
  if (http.corsOrigins.length > 0) await registerCors(app, http.corsOrigins);
  // Answers of 1 KiB or more, to clients that accept it; request bodies must come uncompressed.
  await app.register(compress, { threshold: 1024, encodings: ['br', 'gzip', 'deflate'], requestEncodings: ['identity'] });
  const { rateLimiter, addressLimits } = await registerRateLimits(app, http.rateLimits);
  await registerDocumentation(app, contract);
  const authentication = new Authentication(auth);
  await registerOperations(app, {
    document: contract.document,
    handlers,
    database,
    services,
    authentication,
    rateLimiter,
    addressLimits,
    publicUrl: http.publicUrl,
  });
  return app;
}

// Preflight requests are answered in the plugin's hook, before any credentials are asked for. A
// request from no origin, or another one, gets no CORS at all (an OPTIONS of it answers 405).
async function registerCors(app: FastifyInstance, origins: string[]): Promise<void> {
  const any = origins.includes('*');
  await app.register(cors, {
    origin: (origin, done) => done(null, origin !== undefined && (any || origins.includes(origin)) ? (any ? '*' : origin) : false),
    strictPreflight: false,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}

// By route template, so that ids do not make a series each; requests no route took count as one.
function timeRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
}

// Once the app is closing, every answer asks the client to close its connection, including
// answers to requests that arrived before: no kept-alive connection outlives the drain.
function closeConnectionsWhenClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}
