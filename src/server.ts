// `npm start`: the API, and a worker that runs flows in the same process unless
// TOLSTOY_WORKER=false (an API-only node beside worker processes: `npm run worker`).
import { authWarnings } from './config/config.ts';
import { buildApp } from './http/app.ts';
import { runProcess, startCore } from './process/lifecycle.ts';

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
  await running.app.listen({ port: config.port, host: config.host });
});
