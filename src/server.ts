// `npm start`: the API, and a worker that runs flows in the same process unless
// TOLSTOY_WORKER=false (an API-only node beside worker processes: `npm run worker`).

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authWarnings } from './config/config.ts';
import type { Config } from './config/settings.ts';
import { buildApp } from './http/app.ts';
import { listenFailure, type Running, runProcess, startCore } from './process/lifecycle.ts';

await runProcess(async (config, running) => {
  const { database, services, logger, metrics, tracing } = await startCore(config, running);
  for (const warning of authWarnings(config)) logger.warn(warning);
  running.app = await buildApp({
    database,
    services,
    logger,
    requestTimeoutMs: config.requestTimeoutMs,
    auth: config.auth,
    http: config.http,
    metrics,
    tracing,
  });
  await running.app.listen({ port: config.port, host: config.host }).catch((error) => {
    throw listenFailure(error, 'The API', config.host, config.port, 'PORT (or HOST)');
  });
  logger.info(readyLine(running, config));
});

// Where a newcomer goes next: the API, its docs, and the metrics, at addresses one can open.
function readyLine(running: Running, config: Config): string {
  const reachable = (server: Server, host: string) => {
    const { port } = server.address() as AddressInfo;
    return `http://${['0.0.0.0', '::'].includes(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host}:${port}`;
  };
  const api = reachable(running.app!.server, config.host);
  const metrics = running.metricsServer
    ? `metrics at ${reachable(running.metricsServer, config.metricsHost)}/metrics`
    : 'no metrics (TOLSTOY_METRICS_PORT=off)';
  return `Tolstoy is ready: the API at ${api}/, its docs at ${api}/docs, ${metrics}.`;
}
