// `npm run worker`: runs flows, and serves no HTTP. Start as many as the load needs, on any
// machines, against the same database as the API nodes.
import { runProcess, startCore } from './process/lifecycle.ts';

await runProcess(async (config, running) => {
  await startCore({ ...config, engine: { ...config.engine, worker: true } }, running);
  console.log(`Worker running up to ${config.engine.concurrency} executions at once.`);
});
