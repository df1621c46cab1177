// `npm run worker`: runs flows, and serves no HTTP. Start as many as the load needs, on any
// machines, against the same database as the API nodes.
import { DEFAULT_METRICS_PORT } from './config/settings.ts';
import { runProcess, startCore } from './process/lifecycle.ts';

await runProcess(async (config, running) => {
  // Beside an API node on the same machine, the worker's metrics need a port of their own.
  const metricsPort = process.env.TOLSTOY_METRICS_PORT === undefined ? DEFAULT_METRICS_PORT + 1 : config.metricsPort;
  await startCore({ ...config, metricsPort, engine: { ...config.engine, worker: true } }, running);
  running.logger.info(`Worker running up to ${config.engine.concurrency} executions at once.`);
});
