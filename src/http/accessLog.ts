// One access-log line per request, written when the answer is sent, instead of Fastify's two
// (one on arrival, one on completion). The line is a small object of its own, logged by the root
// logger: Fastify's would serialize the whole request and reply through a logger made for each
// request. A request's own logger (request.log, for its errors) is made only when it logs.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { LogController } from 'fastify';

export class AccessLog extends LogController {
  readonly #logger: FastifyBaseLogger;

  constructor(logger: FastifyBaseLogger, options: ConstructorParameters<typeof LogController>[0]) {
    super(options);
    this.#logger = logger;
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const line = { requestId: request.id, method: request.method, url: loggedUrl(request.url), statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (error) this.#logger.error({ ...line, err: error }, 'request errored');
    else this.#logger.info(line, 'request completed');
  }
}

/** The URL as logged: a webhook's token, the secret part of its address, is left out. */
export function loggedUrl(url: string): string {
  return url.replace(/^\/hooks\/[^/?#]*/, '/hooks/wh_…');
}

type ChildLoggerFactory = NonNullable<FastifyServerOptions['childLoggerFactory']>;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Request loggers that become pino children only when first used: most requests log nothing else. */
export const lazyChildLogger: ChildLoggerFactory = (logger, bindings, options) => {
  let child: FastifyBaseLogger | undefined;
  const real = () => {
    child ??= logger.child(bindings, options);
    return child;
  };
  const lazy = {
    child: (more: object, moreOptions?: object) => real().child(more, moreOptions),
    get level() {
      return real().level;
    },
    set level(level: string) {
      real().level = level;
    },
  } as FastifyBaseLogger;
  for (const level of LEVELS)
    (lazy as unknown as Record<string, unknown>)[level] = (...args: unknown[]) => (real()[level] as (...a: unknown[]) => void)(...args);
  return lazy;
};
