// What the event tests share: a real receiver (a node:http server that records every request as
// it arrived, byte for byte, and answers as the test says), a subscription stored as the API
// stores one (its whsec_ secret sealed by the keyring), and the Standard Webhooks reference
// verification, written here from the spec with node:crypto.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Keyring } from '../../src/crypto/keyring.ts';
import type { Database } from '../../src/db/client.ts';

export interface Heard {
  headers: Record<string, string>;
  body: string;
  /** The body parsed: `{ type, timestamp, data }`. */
  event: { type: string; timestamp: string; data: any };
  at: number;
  /** What it was answered: a status, `hang` (no answer until the sender gives up), or `pending` while it is decided. */
  answer: number | 'hang' | 'pending';
}

/** How to answer a request: a status (with headers), or hang. */
export type Answer = number | { status: number; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  url: string;
  heard: Heard[];
  /** The requests answered 2xx, in the order they arrived. */
  delivered(): Heard[];
  /** Requests not yet answered, nor given up by their sender. */
  inFlight(): number;
  close(): Promise<void>;
}

/** A receiver that answers each request by `answer`, given the request and how many came before with its webhook-id. */
export async function startReceiver(answer: (heard: Heard, earlier: number) => Answer | Promise<Answer> = () => 200): Promise<Receiver> {
  const heard: Heard[] = [];
  let inFlight = 0;
  const hanging = new Set<ServerResponse>();
  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
    const entry: Heard = { headers, body, event: JSON.parse(body), at: Date.now(), answer: 'pending' };
    const earlier = heard.filter((other) => other.headers['webhook-id'] === headers['webhook-id']).length;
    heard.push(entry);
    inFlight++;
    response.on('close', () => inFlight--);
    const decided = await answer(entry, earlier);
    // Its sender went away meanwhile (killed): never answered.
    if (decided === 'hang' || response.destroyed) {
      entry.answer = 'hang';
      hanging.add(response);
      response.on('close', () => hanging.delete(response));
      return;
    }
    const { status, headers: extra = {} } = typeof decided === 'number' ? { status: decided } : decided;
    entry.answer = status;
    response.writeHead(status, { 'content-type': 'text/plain', ...extra }).end(status < 300 ? 'ok' : `refused with ${status}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    heard,
    delivered: () => heard.filter((entry) => typeof entry.answer === 'number' && entry.answer < 300),
    inFlight: () => inFlight,
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A new `whsec_` secret: the base64 of 24 random bytes. */
export const newWhsec = () => `whsec_${randomBytes(24).toString('base64')}`;

export interface Subscribed {
  id: string;
  secret: string;
}

/**
 * Stores a subscription as the API does (until /subscriptions lands, the tests' one way in): its
 * secret sealed by the keyring, bound to the organization and the subscription.
 */
export async function subscribe(
  db: Database,
  keyring: Keyring,
  orgId: string,
  url: string,
  { events = ['execution.started', 'execution.completed', 'execution.failed', 'execution.cancelled'], flowId = null as string | null } = {},
): Promise<Subscribed> {
  const id = randomUUID();
  const secret = newWhsec();
  const sealed = keyring.sealSubscriptionSecret(secret, { orgId, subscriptionId: id });
  await db.$executeRaw`INSERT INTO subscriptions (id, org_id, url, events, flow_id, secret, updated_at)
    VALUES (${id}::uuid, ${orgId}::uuid, ${url}, ${events}::text[], ${flowId}::uuid, ${sealed}, now())`;
  return { id, secret };
}

/**
 * The Standard Webhooks reference verification: an HMAC-SHA256 of `${id}.${timestamp}.${body}`
 * under the base64-decoded key after `whsec_`, base64, compared in constant time with each
 * `v1,` signature of the header. True when one matches.
 */
export function verifiesWith(secret: string, headers: Record<string, string>, body: string): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest();
  return (headers['webhook-signature'] ?? '').split(' ').some((signature) => {
    const [version, value] = signature.split(',');
    const given = Buffer.from(value ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it answers true, or fails naming `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}
