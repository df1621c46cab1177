// `npm run db:seed` (`prisma db seed`): a demo organization to explore the API with, created
// once, with a flow that runs on a fresh machine: its tool is Tolstoy's own API (as in README's
// "Run your first flow"), so it needs no credentials and no network. It prints the ids to send as
// X-Org-ID and X-User-ID, the first time its owner's API key, and the command that runs the flow.
import { readConfig } from '../src/config/config.ts';
import { createDatabase, toJsonText } from '../src/db/client.ts';
import { storedStep } from '../src/definitions/steps.ts';
import { keyRecord } from '../src/resources/apiKeys.ts';

const DEMO = 'Tolstoy Demo';
const DEMO_FLOW = 'Read my organization';
// The tool calls the API where `npm start` serves it with this configuration.
const api = `http://localhost:${readConfig().port}`;
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
      const tool = await tx.tool.create({ data: { orgId: org.id, name: 'Tolstoy itself', baseUrl: api } });
      const action = await tx.action.create({
        data: {
          orgId: org.id,
          toolId: tool.id,
          name: 'Get an organization',
          key: 'organizations.get',
          method: 'GET',
          endpoint: '/organizations/{id}',
          inputSchema: toJsonText({ type: 'object', required: ['id'], properties: { id: { type: 'string' } } }),
        },
      });
      const step = storedStep({ key: 'read', actionId: action.id, inputs: { id: { $eval: 'input.orgId' } } });
      const fields = { name: DEMO_FLOW, description: "Reads the organization named in the run's input, through Tolstoy's own API.", steps: toJsonText([step]) };
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
          stepKey: 'read',
          status: 'completed',
          inputs: toJsonText({ id: org.id }),
          outputs: toJsonText({ id: org.id, name: DEMO }),
          durationMs: 12,
        },
      });
      return { ...org, key };
    }));
  const userId = organization.users[0]!.id;
  console.log(`${existing ? 'Already seeded' : 'Seeded'}: X-Org-ID: ${organization.id}  X-User-ID: ${userId}`);
  if ('key' in organization) console.log(`The owner's API key (shown this once): ${organization.key}`);
  const flow = await db.flow.findFirst({ where: { orgId: organization.id, name: DEMO_FLOW, deletedAt: null }, select: { id: true } });
  if (flow) {
    console.log(`Run the demo flow (with npm start running), and see its answer:`);
    console.log(
      `  curl -X POST ${api}/flows/${flow.id}/executions -H "Content-Type: application/json" -H "Prefer: wait=10" ` +
        `-H "X-Org-ID: ${organization.id}" -H "X-User-ID: ${userId}" -d '{"input":{"orgId":"${organization.id}"}}'`,
    );
  }
} finally {
  await db.$disconnect();
}
