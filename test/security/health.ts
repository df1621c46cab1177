// Measures what an attack costs everyone else: the latency of GET /health, asked every 10 ms
// while the attack runs, and the peak resident memory of the process (the API and the worker,
// not the evaluator processes, whose heaps are capped). Figures are reported, not asserted.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';

export interface Health {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The event loop's longest delay: what the process itself blocked, apart from a busy machine. */
  loopDelayMaxMs: number;
  peakRssMb: number;
}

/** Starts watching; the returned function stops and summarizes. */
export function watchHealth(app: FastifyInstance): () => Promise<Health> {
  const latencies: number[] = [];
  let peakRss = process.memoryUsage.rss();
  let watching = true;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const loop = (async () => {
    while (watching) {
      const started = performance.now();
      await app.inject({ method: 'GET', url: '/health' });
      latencies.push(performance.now() - started);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return async () => {
    watching = false;
    await loop;
    delay.disable();
    const sorted = latencies.sort((a, b) => a - b);
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
    return {
      samples: sorted.length,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: at(1),
      loopDelayMaxMs: Math.round(delay.max / 1e6),
      peakRssMb: Math.round(peakRss / 1e6),
    };
  };
}

export function described(health: Health): string {
  return `/health p50 ${health.p50Ms} ms, p99 ${health.p99Ms} ms, max ${health.maxMs} ms over ${health.samples} requests; event loop delay max ${health.loopDelayMaxMs} ms; peak RSS ${health.peakRssMb} MB`;
}
