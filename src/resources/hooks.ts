// The public address of webhook triggers (`POST /hooks/{token}`): no API key, the URL is the
// secret. The delivery is taken (src/triggers/intake.ts) before anything is answered; a trigger
// that answers with its run's output then waits for the run, within a bound.
import { Answer, type Handler } from '../contract/handlers.ts';
import { ProblemError } from '../contract/problems.ts';
import { fromJsonText } from '../db/client.ts';
import { isFinished } from '../engine/runs/statuses.ts';
import { takeDelivery } from '../triggers/intake.ts';

/** The longest `respond: output` waits for the run before answering 202. */
export const OUTPUT_WAIT_MS = 30_000;

export const receiveWebhook: Handler<'receiveWebhook'> = async ({ params, query, headers, body }, { db, runs, keyring }) => {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
  const request = {
    token: params.token,
    body: bytes,
    headers: headers as Record<string, string | string[] | undefined>,
    query: query as Record<string, unknown>,
  };
  const taken = await takeDelivery(db, runs, keyring, request, new Date());
  if (!taken.duplicate) runs.started(taken.executionId);
  const accepted = { deliveryId: taken.deliveryId, executionId: taken.executionId };
  if (taken.respond === 'accepted') return new Answer(202, accepted);
  // Listening from here, then reading: a run that finishes in between is heard, not missed.
  const stop = new AbortController();
  const finished = runs.finished(taken.executionId, OUTPUT_WAIT_MS, stop.signal);
  try {
    let run = await db.execution.findUniqueOrThrow({ where: { id: taken.executionId }, select: { status: true, output: true } });
    if (!isFinished(run.status) && (await finished)) {
      run = await db.execution.findUniqueOrThrow({ where: { id: taken.executionId }, select: { status: true, output: true } });
    }
    if (run.status === 'completed') return new Answer(200, run.output === null ? null : fromJsonText(run.output));
    if (isFinished(run.status))
      throw new ProblemError('run-failed', `Execution ${taken.executionId} ${run.status === 'cancelled' ? 'was cancelled' : 'failed'}; read it for why.`);
    return new Answer(202, accepted);
  } finally {
    stop.abort();
  }
};
