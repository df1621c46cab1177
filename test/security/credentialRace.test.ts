// Racing the owner's credentials onto a member's base URL. Each attack, and what it must get:
// - a member's PUT (or PATCH) of a tool's baseUrl sent at the same moment as the owner's write of
//   credentials with the owner's baseUrl, round after round: whichever commits first, the tool
//   never ends with credentials behind the member's URL (the member's change is applied before
//   the owner's, or refused with 403 once the credentials are there).
import t from 'tap';
import { world } from '../engine/world.ts';
import { addMember, call } from '../helper.ts';

const ROUNDS = 60;
const MEMBER_WRITES = 4;
const w = await world(t);
const member = await addMember(w.app, w.member);
const OWNER_URL = 'https://api.owner.example';
const MEMBER_URL = 'https://collector.member.example';

t.test(`a member's baseUrl change never puts the owner's new credentials behind it (${ROUNDS} rounds)`, async (t) => {
  const outcomes = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: `Race ${round}`, baseUrl: OWNER_URL, authType: 'bearer' } });
    const url = `/tools/${tool.data.id}`;
    const moved =
      round % 4 === 3
        ? { method: 'PATCH' as const, url, payload: { baseUrl: MEMBER_URL }, headers: { 'content-type': 'application/merge-patch+json' } }
        : { method: 'PUT' as const, url, payload: { baseUrl: MEMBER_URL } };
    const [byOwner, ...byMember] = await Promise.all([
      w.send({ method: 'PUT', url, payload: { baseUrl: OWNER_URL, credentials: { token: `token-${round}` } } }),
      ...Array.from({ length: MEMBER_WRITES }, () => call(w.app, member, moved)),
    ]);
    t.equal(byOwner.statusCode, 200, `round ${round}: the owner's write`);
    for (const { statusCode } of byMember) {
      t.ok([200, 403].includes(statusCode), `round ${round}: the member's change is applied or refused (${statusCode})`);
      outcomes.set(`member ${statusCode}`, (outcomes.get(`member ${statusCode}`) ?? 0) + 1);
    }
    const stored = await w.db.tool.findUniqueOrThrow({ where: { id: tool.data.id } });
    if (stored.credentials !== null && stored.baseUrl !== OWNER_URL) t.fail(`round ${round}: the credentials are behind ${stored.baseUrl}`);
  }
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
