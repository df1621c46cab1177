// The event sender: every worker process runs one, and each sends the deliveries due (claimed in
// the database, so any number of senders share them without a leader). It wakes on
// `tolstoy_events` (announced by the triggers that store events), when one of its sends ends, and
// at least every POLL_MS, so deliveries left by a dead worker resume within a second of their
// lease's end. It shares nothing with the runs but the database pool, and holds a connection only
// for one statement at a time: a slow receiver delays no run.
//
// Bounds: at most `inFlight` sends at once per process, and `orgInFlight` of one organization, so
// one organization's hanging receivers leave the others their turns. Each attempt is a POST of the
// stored body, byte for byte, through the SSRF guard (as steps' calls), following no redirect,
// within `sendTimeoutMs`; at most ANSWER_KEPT bytes of the answer are read (for `last_error`), the
// rest is discarded.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { EventSettings } from '../config/settings.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/client.ts';
import { guardedLookup, OutboundError, outboundError, refuseLiteralTarget } from '../engine/outbound.ts';
import { type Claimed, claimDue, settle, untilNextDue } from './deliveries.ts';
import { type Attempt, answered, verdict } from './retries.ts';
import { signatureHeaders } from './signing.ts';

/** The channel the database announces stored events on (payload: the organization's id). */
export const EVENT_CHANGES = 'tolstoy_events';
/** The longest a sender sleeps between looks for due deliveries. */
export const POLL_MS = 1000;
/** A claim's lease lasts the attempt's timeout and this much more (to record its outcome). */
const LEASE_MARGIN_MS = 5000;
/** How much of an answer's body `last_error` keeps. */
const ANSWER_KEPT = 1024;

export interface EventSenderOptions {
  db: () => Database;
  boss: PgBoss;
  keyring: Keyring;
  settings: EventSettings;
  allowPrivateTargets: boolean;
  log: Logger;
}

export class EventSender {
  readonly #options: EventSenderOptions;
  readonly #agent: Agent;
  /** Sends in flight, by organization. */
  readonly #sending = new Map<string, number>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #stopped = false;
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;
  #stopListening: (() => Promise<void>) | undefined;

  constructor(options: EventSenderOptions) {
    this.#options = options;
    this.#agent = new Agent(options.allowPrivateTargets ? {} : { connect: { lookup: guardedLookup() } });
  }

  /** Listens for stored events; where it cannot (behind a transaction pooler), polling alone finds them. */
  async start(): Promise<void> {
    const db = this.#options.boss.getDb();
    try {
      if (!db.listen) throw new Error('the queue cannot listen for notifications');
      const handle = await db.listen(
        EVENT_CHANGES,
        () => this.#ring(),
        () => this.#ring(),
      );
      this.#stopListening = () => handle.close();
    } catch (error) {
      this.#options.log.warn({ err: error }, `no news of events from the database (LISTEN/NOTIFY); looking every ${POLL_MS} ms`);
    }
    this.#loop = this.#run();
  }

  /** Claims nothing more; sends in flight get until `deadlineMs`, then are cut short and handed back at once. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopped = true;
    this.#ring();
    await this.#loop;
    await this.#stopListening?.().catch(() => undefined);
    const timer = setTimeout(() => this.#abort.abort(), deadlineMs);
    await Promise.all(this.#inFlight);
    clearTimeout(timer);
    await this.#agent.close().catch(() => undefined);
  }

  #ring(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#woken = false;
      let sleepMs = POLL_MS;
      try {
        await this.#claimAndSend();
        sleepMs = await untilNextDue(this.#options.db(), POLL_MS);
      } catch (error) {
        this.#options.log.error({ err: error }, 'the event sender could not claim deliveries; it tries again');
      }
      if (this.#stopped || this.#woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Claims deliveries for the free places and starts their sends (not waiting for them). */
  async #claimAndSend(): Promise<void> {
    const { inFlight, orgInFlight, sendTimeoutMs } = this.#options.settings;
    const free = inFlight - this.#inFlight.size;
    if (free <= 0) return;
    const claimed = await claimDue(this.#options.db(), {
      limit: free,
      orgLimit: orgInFlight,
      sending: this.#sending,
      leaseMs: sendTimeoutMs + LEASE_MARGIN_MS,
    });
    for (const delivery of claimed) {
      this.#sending.set(delivery.orgId, (this.#sending.get(delivery.orgId) ?? 0) + 1);
      const sent = this.#deliver(delivery).finally(() => {
        this.#inFlight.delete(sent);
        const left = this.#sending.get(delivery.orgId)! - 1;
        if (left === 0) this.#sending.delete(delivery.orgId);
        else this.#sending.set(delivery.orgId, left);
        this.#ring();
      });
      this.#inFlight.add(sent);
    }
  }

  async #deliver(delivery: Claimed): Promise<void> {
    const { settings, log } = this.#options;
    try {
      const { attempt, detail } = await this.#attempt(delivery);
      if (this.#abort.signal.aborted) {
        await this.#handBack(delivery);
        return;
      }
      const judged = verdict(attempt, delivery.attempts, settings.retryScheduleMs);
      await settle(this.#options.db(), delivery, {
        verdict: judged,
        status: 'status' in attempt ? attempt.status : null,
        error:
          judged.outcome === 'delivered'
            ? null
            : [answered(attempt), detail]
                .filter(Boolean)
                .join(': ')
                .slice(0, 2 * ANSWER_KEPT),
        answered: answered(attempt),
        failingLimitMs: settings.failingLimitMs,
      });
    } catch (error) {
      // Its lease ends, and any worker tries it again.
      log.error({ err: error, deliveryId: delivery.id }, 'an event delivery could not be recorded');
    }
  }

  /** One attempt: the answer's status and the start of its body, or why there was none. */
  async #attempt(delivery: Claimed): Promise<{ attempt: Attempt; detail?: string }> {
    let secrets: string[];
    try {
      const owner = { orgId: delivery.orgId, subscriptionId: delivery.subscriptionId };
      const { keyring } = this.#options;
      secrets = [keyring.openSubscriptionSecret(delivery.secret, owner)];
      if (delivery.previousSecret) secrets.push(keyring.openSubscriptionSecret(delivery.previousSecret, owner));
    } catch (error) {
      return { attempt: { error: 'secret-unopened' }, detail: (error as Error).message };
    }
    const { sendTimeoutMs } = this.#options.settings;
    const deadline = AbortSignal.timeout(sendTimeoutMs);
    try {
      const url = new URL(delivery.url);
      refuseLiteralTarget(url, this.#options.allowPrivateTargets);
      const headers = { 'content-type': 'application/json', ...signatureHeaders(delivery.id, delivery.payload, secrets, new Date()) };
      const response = await request(url, {
        method: 'POST',
        headers,
        body: delivery.payload,
        dispatcher: this.#agent,
        signal: AbortSignal.any([this.#abort.signal, deadline]),
      });
      const start = await firstBytes(response.body, ANSWER_KEPT);
      const retryAfter = response.headers['retry-after'];
      return {
        attempt: { status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter },
        detail: start || undefined,
      };
    } catch (error) {
      const failure =
        error instanceof OutboundError
          ? error
          : outboundError(error, { cancelled: this.#abort.signal.aborted, timedOut: deadline.aborted, timeoutMs: sendTimeoutMs });
      return { attempt: { error: failure.code }, detail: failure.message };
    }
  }

  /** A send cut short by a stopping worker: due again at once, for any worker. */
  async #handBack(delivery: Claimed): Promise<void> {
    await this.#options.db().$executeRaw`
      UPDATE event_deliveries SET next_attempt_at = now() WHERE id = ${delivery.id}::uuid AND status = 'pending' AND attempts = ${delivery.attempts}::int`;
  }
}

/** Up to `limit` bytes of a body as text (no NUL, which PostgreSQL's text refuses); the rest is discarded. */
async function firstBytes(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  body.destroy();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8').replaceAll('\u0000', '').trim();
}
