// Reaching inside the network through a tool's base URL. Each attack, and what it must get:
// - an IPv4-compatible IPv6 address (`::7f00:1`, `::a9fe:a9fe`, `::a00:1`: the deprecated
//   ::/96, which some stacks route to the IPv4 address it embeds) as the base URL: the step fails
//   with blocked-target and the target hears nothing, as for the IPv4 address itself; the whole
//   range is refused, even `::808:808`, since no public API is reached that way;
// - the same addresses as a name resolves them: isPublicAddress, which the connection's own
//   lookup asks, says they are not public.
// - the loopback address in the other spellings a URL accepts (decimal `2130706433`, hex
//   `0x7f000001`, octal `0177.0.0.1`, short `127.1`, `0.0.0.0`, IPv4-mapped `[::ffff:7f00:1]`,
//   SIIT `[::ffff:0:7f00:1]`, NAT64 `[64:ff9b::7f00:1]` and its local-use `[64:ff9b:1::7f00:1]`,
//   6to4 `[2002:7f00:1::]`, `[0::1]`): each fails with blocked-target
//   and the target hears nothing.
import t from 'tap';
import { isPublicAddress } from '../../src/engine/outbound.ts';
import { world } from '../engine/world.ts';

const w = await world(t, { allowPrivateTargets: false });
const port = new URL(w.target.url).port;

t.test('IPv4-compatible IPv6 addresses are refused like the private addresses they embed', async (t) => {
  for (const address of ['::7f00:1', '::a9fe:a9fe', '::a00:1', '::c0a8:101', '::127.0.0.1', '::0:7f00:1', '0:0:0:0:0:0:7f00:1', '::808:808']) {
    t.notOk(isPublicAddress(address), address);
  }
  const before = w.target.received.length;
  for (const host of ['[::7f00:1]', '[::a9fe:a9fe]', '[0:0:0:0:0:0:7f00:1]']) {
    const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Inside', baseUrl: `http://${host}:${port}` } });
    const action = await w.send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'a', key: `compat-${tool.data.id}`, method: 'GET', endpoint: '/echo/in' },
    });
    const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id }] });
    const execution = await w.run(flow.id);
    t.match(execution.steps[0], { status: 'failed', error: { code: 'blocked-target', message: /is not a public address/ } }, host);
  }
  t.equal(w.target.received.length, before, 'the target heard nothing');
});

t.test('the loopback address in every spelling a URL accepts is refused', async (t) => {
  const before = w.target.received.length;
  const hosts = ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '0.0.0.0', '[::ffff:7f00:1]', '[::ffff:0:7f00:1]', '[64:ff9b::7f00:1]'];
  for (const host of [...hosts, '[64:ff9b:1::7f00:1]', '[2002:7f00:1::]', '[0::1]']) {
    const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Inside', baseUrl: `http://${host}:${port}` } });
    t.equal(tool.statusCode, 201, `a tool at ${host} is written`);
    const action = await w.send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'a', key: `spelling-${tool.data.id}`, method: 'GET', endpoint: '/echo/in' },
    });
    const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id }] });
    const execution = await w.run(flow.id);
    t.match(execution.steps[0], { status: 'failed', error: { code: 'blocked-target' } }, host);
  }
  t.equal(w.target.received.length, before, 'the target heard nothing');
});
