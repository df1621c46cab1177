// Subscriptions' secrets under key rotation, as tools' credentials and webhooks' secrets: a key
// that does not open them is refused at start-up, and npm run credentials:rotate re-seals the
// current secret and the previous one with the new key.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { checkStoredCredentials, rotateCredentials } from '../../src/config/encryption.ts';
import { Keyring } from '../../src/crypto/keyring.ts';
import { buildTestApp, createTenant } from '../helper.ts';

const { app, db } = await buildTestApp(t);
const { orgId } = await createTenant(app);

t.test('the secrets of a subscription are re-sealed with the new key, both of them', async (t) => {
  const old = randomBytes(32);
  const fresh = randomBytes(32);
  const sealing = new Keyring(old);
  const id = '01a20d00-1a2b-7c3d-8e4f-5a6b7c8d9e0f';
  const owner = { orgId, subscriptionId: id };
  await db.subscription.create({
    data: {
      id,
      orgId,
      url: 'https://hooks.example.com/in',
      events: ['execution.failed'],
      secret: sealing.sealSubscriptionSecret('whsec_current', owner),
      previousSecret: sealing.sealSubscriptionSecret('whsec_previous', owner),
      previousSecretUntil: new Date(Date.now() + 3600_000),
    },
  });
  const alone = new Keyring(fresh);
  await t.rejects(
    checkStoredCredentials(db, alone),
    {
      message: new RegExp(
        `subscription secrets in the database were encrypted with key ${sealing.currentId}, but TOLSTOY_ENCRYPTION_KEY is key ${alone.currentId}`,
      ),
    },
    'the new key alone does not start',
  );
  t.equal(await rotateCredentials(db, new Keyring(fresh, old)), 1);
  t.equal(await rotateCredentials(db, new Keyring(fresh, old)), 0, 'nothing left to do');
  await checkStoredCredentials(db, alone);
  const row = await db.subscription.findUniqueOrThrow({ where: { id } });
  t.equal(alone.openSubscriptionSecret(row.secret, owner), 'whsec_current');
  t.equal(alone.openSubscriptionSecret(row.previousSecret!, owner), 'whsec_previous');
});
