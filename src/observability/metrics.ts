// Prometheus metrics (prom-client), served on a port of their own (serveMetrics) so that they stay
// off the public API: requests by route and status, the database pool, the queue and the
// executions by status, step attempts by outcome, and the process (CPU, memory, event loop).
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type Database, poolOf } from '../db/client.ts';
import { FINISHED, UNFINISHED } from '../engine/runs/statuses.ts';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Histogram({
    name: 'tolstoy_http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status: their count (rate) and latency.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly attempts = new Histogram({
    name: 'tolstoy_step_attempt_duration_seconds',
    help: 'Attempts of flow steps by outcome, and how long each took.',
    // Never by action, flow or organization: tenants create those without bound, and each id would be series of its own.
    labelNames: ['status'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });

  readonly scheduleFires = new Histogram({
    name: 'tolstoy_schedule_fire_lateness_seconds',
    help: 'Slots of schedule triggers by outcome (started, queued, skipped, missed): their count, and how late each was when it was reached.',
    labelNames: ['outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers: [this.registry],
  });
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tolstoy_' });
  }

  /** Gauges read from the database when scraped: its pool, the executions by status, the queue. */
  watch(database: () => Database): void {
    const registers = [this.registry];
    new Gauge({
      name: 'tolstoy_db_pool_connections',
      help: "The database pool's connections (total, idle) and the queries waiting for one.",
      labelNames: ['state'] as const,
      registers,
      collect() {
        const pool = poolOf(database());
        if (!pool) return;
        for (const [state, count] of Object.entries(pool)) this.set({ state }, count);
      },
    });
    // One query serves both gauges of a scrape.
    let counting: Promise<Map<string, number>> | undefined;
    const counts = () => {
      counting ??= executionsByStatus(database()).finally(() => setTimeout(() => (counting = undefined), 1000).unref());
      return counting;
    };
    new Gauge({
      name: 'tolstoy_executions',
      help: 'Executions by status, in every organization.',
      labelNames: ['status'] as const,
      registers,
      async collect() {
        for (const [status, count] of await counts()) this.set({ status }, count);
      },
    });
    new Gauge({
      name: 'tolstoy_queue_depth',
      help: 'Executions queued and waiting for a worker.',
      registers,
      async collect() {
        this.set((await counts()).get('queued') ?? 0);
      },
    });
  }
}

async function executionsByStatus(db: Database): Promise<Map<string, number>> {
  const rows = await db.$queryRaw<{ status: string; count: number }[]>`SELECT status::text, count(*)::int AS count FROM executions GROUP BY status`;
  const counts = new Map([...UNFINISHED, ...FINISHED].map((status): [string, number] => [status, 0]));
  for (const { status, count } of rows) counts.set(status, count);
  return counts;
}

/** Serves GET /metrics on its own port, for Prometheus to scrape. */
export async function serveMetrics(metrics: Metrics, port: number, host: string): Promise<Server> {
  const server = createServer(async (request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Metrics are at GET /metrics.\n');
      return;
    }
    try {
      const text = await metrics.registry.metrics();
      response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
    } catch (error) {
      response.writeHead(503, { 'content-type': 'text/plain' }).end(`Metrics cannot be read now: ${(error as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
