// What the benchmark's two peers share with each other (never with Tolstoy, whose code they do
// not import): reading an API key from a request as Tolstoy's keys are made, the answer to a
// request without a valid one, and the one-line access log that Tolstoy writes too.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY = /^Bearer (tsk_([0-9A-Za-z]{10})[0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

function checksum(body: string): string {
  let value = crc32(body);
  let text = '';
  for (let i = 0; i < 6; i++) {
    text = ALPHABET[value % 62] + text;
    value = Math.floor(value / 62);
  }
  return text;
}

/** The key's lookup id and SHA-256, or undefined when the header holds no well-formed key. */
export function keyOf(authorization: string | undefined): { lookup: string; hash: string } | undefined {
  const match = authorization === undefined ? null : KEY.exec(authorization);
  if (!match || checksum(match[1]!) !== match[3]) return undefined;
  return {
    lookup: match[2]!,
    hash: createHash('sha256')
      .update(match[1]! + match[3]!)
      .digest('hex'),
  };
}

export const UNAUTHORIZED = {
  type: '/problems/unauthorized',
  title: 'Authentication required',
  status: 401,
  detail: 'Send a valid API key: Authorization: Bearer tsk_…',
};

/** One line per answered request, buffered and flushed every half second, as Tolstoy does. */
export function accessLog(app: FastifyInstance, name: string): void {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), 500).unref();
  const log = pino({ name }, destination);
  app.addHook('onResponse', (request, reply, done) => {
    log.info(
      { requestId: request.id, method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime },
      'request completed',
    );
    done();
  });
}
