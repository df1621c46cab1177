// The database's refusals are recognised by the constraint that refused, whether the statement
// was a model query or a raw one (Prisma reports those differently).
import t from 'tap';
import { brokenForeignKey, brokenUniqueConstraint } from '../../src/db/errors.ts';
import { freshDatabase } from '../helper.ts';

const MISSING_ORG = '01a20000-0000-7000-8000-000000000001';

t.test('a broken foreign key is named, from a model query and from raw statements', async (t) => {
  const db = (await freshDatabase(t)).current;
  const refusals = [
    db.tool.create({ data: { orgId: MISSING_ORG, name: 'x', baseUrl: 'https://x.example.com' } }),
    db.$queryRaw`INSERT INTO tools (id, org_id, name, base_url, updated_at) VALUES (gen_random_uuid(), ${MISSING_ORG}::uuid, 'x', 'https://x.example.com', now()) RETURNING id`,
    db.$executeRaw`INSERT INTO tools (id, org_id, name, base_url, updated_at) VALUES (gen_random_uuid(), ${MISSING_ORG}::uuid, 'x', 'https://x.example.com', now())`,
  ];
  for (const refusal of refusals) {
    const error = await refusal.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(brokenForeignKey(error), 'tools_org_id_fkey');
    t.equal(brokenUniqueConstraint(error), undefined);
  }
});

t.test('a broken unique constraint is named, from a model query and from a raw statement', async (t) => {
  const db = (await freshDatabase(t)).current;
  const org = await db.organization.create({ data: { name: 'Acme' } });
  await db.user.create({ data: { orgId: org.id, email: 'a@example.com' } });
  const refusals = [
    db.user.create({ data: { orgId: org.id, email: 'a@example.com' } }),
    db.$queryRaw`INSERT INTO users (id, org_id, email, updated_at) VALUES (gen_random_uuid(), ${org.id}::uuid, 'a@example.com', now()) RETURNING id`,
  ];
  for (const refusal of refusals) {
    const error = await refusal.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(brokenUniqueConstraint(error), 'users_org_id_email_key');
    t.equal(brokenForeignKey(error), undefined);
  }
});
