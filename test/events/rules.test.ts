// The pure rules of sending: what an attempt comes to and when the next one is made, and the
// signature headers, checked against the reference algorithm at a fixed time.
import t from 'tap';
import { EVENTS } from '../../src/config/settings.ts';
import { retryAfterMs, verdict } from '../../src/events/retries.ts';
import { signatureHeaders } from '../../src/events/signing.ts';
import { newWhsec, verifiesWith } from './scene.ts';

const SCHEDULE = EVENTS.retryScheduleMs;

t.test('2xx is delivered; 408, 429, 5xx, timeouts and network errors are retried by the schedule; the rest fail at once', async (t) => {
  for (const status of [200, 201, 204, 299]) t.same(verdict({ status }, 1, SCHEDULE), { outcome: 'delivered' }, `${status}`);
  for (const status of [408, 429, 500, 502, 503, 599]) t.same(verdict({ status }, 1, SCHEDULE), { outcome: 'retry', waitMs: 5000 }, `${status}`);
  for (const error of ['timeout', 'network-error', 'secret-unopened'] as const)
    t.same(verdict({ error }, 2, SCHEDULE), { outcome: 'retry', waitMs: 30_000 }, error);
  for (const status of [301, 302, 400, 401, 403, 404, 410, 422]) t.same(verdict({ status }, 1, SCHEDULE), { outcome: 'failed' }, `${status}`);
  t.same(verdict({ error: 'blocked-target' }, 1, SCHEDULE), { outcome: 'failed' });
  t.same(verdict({ status: 503 }, 9, SCHEDULE), { outcome: 'retry', waitMs: 86_400_000 }, 'the tenth attempt a day after the ninth');
  t.same(verdict({ status: 503 }, 10, SCHEDULE), { outcome: 'failed' }, 'none after the last');
  t.ok(SCHEDULE.slice(0, 3).reduce((sum, wait) => sum + wait, 0) < 60_000, 'the first three attempts within a minute of the event');
});

t.test('a 429’s Retry-After is honoured when longer than the schedule, up to its longest wait', async (t) => {
  const now = Date.parse('2026-12-10T09:00:00Z');
  t.same(verdict({ status: 429, retryAfter: '120' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 120_000 });
  t.same(verdict({ status: 429, retryAfter: '1' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 5000 }, 'shorter: the schedule');
  t.same(verdict({ status: 429, retryAfter: '999999999' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 86_400_000 }, 'bounded');
  t.same(verdict({ status: 429, retryAfter: 'Thu, 10 Dec 2026 09:10:00 GMT' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 600_000 }, 'an HTTP-date');
  t.same(verdict({ status: 429, retryAfter: 'soon' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 5000 }, 'unreadable: the schedule');
  t.same(verdict({ status: 503, retryAfter: '120' }, 1, SCHEDULE, now), { outcome: 'retry', waitMs: 5000 }, 'only a 429’s');
  t.equal(retryAfterMs('Thu, 10 Dec 2026 08:00:00 GMT', now), 0, 'a date past is now');
  t.equal(retryAfterMs(undefined, now), undefined);
});

t.test('the signature headers: the delivery id, the attempt’s unix seconds, one v1 signature per secret', async (t) => {
  const [current, previous] = [newWhsec(), newWhsec()];
  const at = new Date('2026-12-10T09:00:00.900Z');
  const body = '{"type":"execution.completed","data":{"name":"Zoë ✓"}}';
  const one = signatureHeaders('delivery-1', body, [current], at);
  t.equal(one['webhook-id'], 'delivery-1');
  t.equal(one['webhook-timestamp'], String(Date.parse('2026-12-10T09:00:00Z') / 1000));
  t.ok(verifiesWith(current, one, body));
  const both = signatureHeaders('delivery-1', body, [current, previous], at);
  const [first, second] = both['webhook-signature']!.split(' ');
  t.equal(first, one['webhook-signature']);
  t.ok(verifiesWith(previous, { ...both, 'webhook-signature': second! }, body));
  t.notOk(verifiesWith(previous, one, body));
});
