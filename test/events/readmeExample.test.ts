// The README's verification example ("Events out", "Signatures"), run as it is written over a
// delivery a real receiver got: it accepts it, and refuses it altered, under another secret, or
// stale.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { world } from '../engine/world.ts';
import { newWhsec, startReceiver, subscribe, until } from './scene.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Signatures'));
const [, example] = section.match(/```js\n([\s\S]+?)```/) ?? [];

type Verify = (secret: string, headers: Record<string, string>, body: string) => boolean;

t.test('the README’s few lines of node:crypto verify what Tolstoy sends', async (t) => {
  t.ok(example, 'the example is in the README');
  const file = join(tmpdir(), `tolstoy-verify-${process.pid}.mjs`);
  writeFileSync(file, `${example}\nexport { verify };\n`);
  t.teardown(() => rmSync(file, { force: true }));
  const { verify } = (await import(pathToFileURL(file).href)) as { verify: Verify };

  const w = await world(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const subscription = await subscribe(w.db, w.keyring, w.member.orgId, receiver.url, { events: ['execution.completed'] });
  const flow = await w.flow({ steps: [{ key: 'done', transform: { ok: true } }] });
  await w.run(flow.id);
  await until('the event', () => receiver.delivered().length === 1);
  const { headers, body } = receiver.heard[0]!;

  t.equal(verify(subscription.secret, headers, body), true, 'it verifies');
  t.equal(verify(subscription.secret, headers, body.replace('completed', 'failed')), false, 'not an altered body');
  t.equal(verify(newWhsec(), headers, body), false, 'not under another secret');
  t.equal(verify(subscription.secret, { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 600) }, body), false, 'not stale');
});
