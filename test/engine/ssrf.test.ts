// Steps may not reach private, loopback, link-local or metadata addresses unless allowed (as the
// other engine tests are, to call their local target). The check is on the address connected to.
import t from 'tap';
import { isPublicAddress } from '../../src/engine/outbound.ts';
import { world } from './world.ts';

const w = await world(t, { allowPrivateTargets: false });
const port = new URL(w.target.url).port;

async function runAgainst(baseUrl: string) {
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Inside', baseUrl } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'a', key: `inside-${tool.data.id}`, method: 'GET', endpoint: '/echo/in' },
  });
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id, retry: { maxAttempts: 3, initialDelayMs: 10 } }] });
  return w.run(flow.id);
}

t.test('addresses inside the network are refused before anything is sent', async (t) => {
  const before = w.target.received.length;
  for (const baseUrl of [
    `http://127.0.0.1:${port}`,
    `http://[::1]:${port}`,
    `http://[::ffff:127.0.0.1]:${port}`,
    `http://0.0.0.0:${port}`,
    'http://169.254.169.254',
    'http://10.0.0.1',
    'http://192.168.1.1',
    'http://100.64.0.1',
  ]) {
    const execution = await runAgainst(baseUrl);
    t.match(
      execution.steps[0],
      { status: 'failed', attempts: 1, error: { code: 'blocked-target', message: /is not a public address; steps may not call private/ } },
      baseUrl,
    );
  }
  t.equal(w.target.received.length, before, 'the target heard nothing');
});

t.test('a name is checked by the address it resolves to when connecting', async (t) => {
  const before = w.target.received.length;
  const execution = await runAgainst(`http://localhost:${port}`);
  t.match(execution.steps[0], {
    status: 'failed',
    attempts: 1,
    error: { code: 'blocked-target', message: /localhost resolves to .*which is not a public address/ },
  });
  t.equal(w.target.received.length, before);
});

t.test('the OAuth token endpoint is held to the same rule', async (t) => {
  const credentials = { tokenUrl: `${w.target.url}/oauth/token`, clientId: 'tolstoy', clientSecret: 's3cret' };
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'OAuth', baseUrl: 'https://api.example.com', authType: 'oauth2', credentials } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'a', key: 'oauth-inside', method: 'GET', endpoint: '/x' },
  });
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id, retry: { maxAttempts: 3, initialDelayMs: 10 } }] });
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'failed', attempts: 1, error: { code: 'credentials-error', message: /not a public address/ } });
});

t.test('public and private addresses are told apart', async (t) => {
  for (const address of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2001:4860:4860::8888']) t.ok(isPublicAddress(address), address);
  for (const address of [
    '127.0.0.1',
    '127.8.9.10',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.0.1',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    '::ffff:10.0.0.1',
    '::ffff:127.0.0.1',
    '64:ff9b::a00:1',
    '2002:a00:1::',
  ]) {
    t.notOk(isPublicAddress(address), address);
  }
});
