// `npm run db:seed` (`prisma db seed`): a demo organization to explore the API with, created
// once. It prints the ids to send as X-Org-ID and X-User-ID, and the first time its owner's API key.
import { createDatabase, toJsonText } from '../src/db/client.ts';
import { keyRecord } from '../src/domain/apiKeys.ts';
import { storedStep } from '../src/domain/flows.ts';

const DEMO = 'Tolstoy Demo';
const db = createDatabase(process.env.DATABASE_URL!, { preparedStatements: false });
try {
  const existing = await db.organization.findFirst({ where: { name: DEMO }, include: { users: { take: 1, orderBy: { id: 'asc' } } } });
  const organization =
    existing ??
    (await db.$transaction(async (tx) => {
      const org = await tx.organization.create({
        data: { name: DEMO, users: { create: { email: 'demo@tolstoy.dev', name: 'Demo Owner', role: 'owner' } } },
        include: { users: true },
      });
      const { key, data } = keyRecord({ orgId: org.id, userId: org.users[0]!.id }, 'Demo key');
      await tx.apiKey.create({ data });
      const tool = await tx.tool.create({ data: { orgId: org.id, name: 'Slack API', baseUrl: 'https://slack.com/api', authType: 'bearer' } });
      const action = await tx.action.create({
        data: {
          orgId: org.id,
          toolId: tool.id,
          name: 'Post a message',
          key: 'slack.post_message',
          method: 'POST',
          endpoint: '/chat.postMessage',
          headers: toJsonText({ 'Content-Type': 'application/json' }),
          inputSchema: toJsonText({ type: 'object', required: ['channel', 'text'], properties: { channel: { type: 'string' }, text: { type: 'string' } } }),
        },
      });
      const step = storedStep({ key: 'announce', actionId: action.id, inputs: { channel: '#releases', text: 'A new release is out' } });
      const fields = { name: 'Announce releases', description: 'Posts every release to #releases.', steps: toJsonText([step]) };
      const flow = await tx.flow.create({
        data: {
          orgId: org.id,
          ...fields,
          stepRefs: { create: { position: 0, key: step.key, actionId: step.actionId } },
          versions: { create: { version: 1, ...fields } },
        },
      });
      await tx.executionLog.create({
        data: {
          orgId: org.id,
          flowId: flow.id,
          userId: org.users[0]!.id,
          executionId: 'demo-run-1',
          stepKey: 'announce',
          status: 'completed',
          inputs: toJsonText({ channel: '#releases' }),
          outputs: toJsonText({ ok: true }),
          durationMs: 182,
        },
      });
      return { ...org, key };
    }));
  console.log(`${existing ? 'Already seeded' : 'Seeded'}: X-Org-ID: ${organization.id}  X-User-ID: ${organization.users[0]!.id}`);
  if ('key' in organization) console.log(`The owner's API key (shown this once): ${organization.key}`);
} finally {
  await db.$disconnect();
}
