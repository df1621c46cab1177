// The key that encrypts tool credentials: TOLSTOY_ENCRYPTION_KEY, or the same name in the AWS
// secret (which wins, as it does for the database URLs); outside production without either, a
// key generated once and kept beside the embedded data. Production without a key does not start.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/client.ts';
import type { Config, EncryptionKeys } from './settings.ts';

export class KeyError extends Error {}

export async function loadKeyring(config: Config, fromSecret?: EncryptionKeys): Promise<Keyring> {
  const current = fromSecret?.current ?? config.encryptionKeys.current;
  const previous = fromSecret?.previous ?? config.encryptionKeys.previous;
  if (current) return new Keyring(Buffer.from(current, 'base64'), previous ? Buffer.from(previous, 'base64') : undefined);
  if (config.nodeEnv === 'production') {
    throw new KeyError('TOLSTOY_ENCRYPTION_KEY is required in production, to encrypt tool credentials (make one with: openssl rand -base64 32).');
  }
  return new Keyring(await developmentKey(keyFileOf(config)), previous ? Buffer.from(previous, 'base64') : undefined);
}

/** Where development keeps its generated key: beside the embedded PostgreSQL's data. */
export function keyFileOf(config: Config): string {
  return join(dirname(config.dataDir), 'encryption.key');
}

async function developmentKey(file: string): Promise<Buffer> {
  if (existsSync(file)) return Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
  const key = randomBytes(32);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(`${file}.partial`, key.toString('base64'), { mode: 0o600 });
  await rename(`${file}.partial`, file);
  return key;
}

/** Refuses to start when stored credentials (tools', webhooks' and subscriptions' secrets) were sealed with a key that is not configured. */
export async function checkStoredCredentials(db: Database, keyring: Keyring): Promise<void> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT split_part(credentials, '.', 2) AS id FROM tools WHERE credentials IS NOT NULL
    UNION SELECT split_part(secret, '.', 2) FROM triggers WHERE secret IS NOT NULL
    UNION SELECT split_part(secret, '.', 2) FROM subscriptions
    UNION SELECT split_part(previous_secret, '.', 2) FROM subscriptions WHERE previous_secret IS NOT NULL`;
  const unknown = rows.map((row) => row.id).filter((id) => !keyring.knows(id));
  if (unknown.length === 0) return;
  throw new KeyError(
    `Tool credentials, webhook or subscription secrets in the database were encrypted with key ${unknown.join(', ')}, but TOLSTOY_ENCRYPTION_KEY is key ${keyring.currentId}: ` +
      'set TOLSTOY_ENCRYPTION_KEY to that key, or, while rotating, set the new key there and the old one in TOLSTOY_ENCRYPTION_KEY_PREVIOUS, then run npm run credentials:rotate.',
  );
}

/** Re-seals, with the current key, every tool's credentials sealed with another; returns how many. */
export async function rotateCredentials(db: Database, keyring: Keyring): Promise<number> {
  const stale = await db.tool.findMany({ where: { credentials: { not: null }, NOT: { credentials: { startsWith: `v1.${keyring.currentId}.` } } } });
  let rotated = 0;
  for (const tool of stale) {
    const owner = { orgId: tool.orgId, toolId: tool.id };
    const credentials = keyring.open(tool.credentials!, owner);
    // Only if unchanged meanwhile: a concurrent update sealed it with the current key already.
    const { count } = await db.tool.updateMany({
      where: { id: tool.id, credentials: tool.credentials },
      data: { credentials: keyring.seal(credentials, owner) },
    });
    rotated += count;
  }
  return rotated + (await rotateTriggerSecrets(db, keyring)) + (await rotateSubscriptionSecrets(db, keyring));
}

/** The same for webhook triggers' signing secrets. */
async function rotateTriggerSecrets(db: Database, keyring: Keyring): Promise<number> {
  const stale = await db.trigger.findMany({ where: { secret: { not: null }, NOT: { secret: { startsWith: `v1.${keyring.currentId}.` } } } });
  let rotated = 0;
  for (const trigger of stale) {
    const owner = { orgId: trigger.orgId, triggerId: trigger.id };
    const secret = keyring.openSecret(trigger.secret!, owner);
    const { count } = await db.trigger.updateMany({ where: { id: trigger.id, secret: trigger.secret }, data: { secret: keyring.sealSecret(secret, owner) } });
    rotated += count;
  }
  return rotated;
}

/** The same for event subscriptions' signing secrets, the current one and the previous one. */
async function rotateSubscriptionSecrets(db: Database, keyring: Keyring): Promise<number> {
  const current = `v1.${keyring.currentId}.`;
  const stale = await db.subscription.findMany({
    where: { OR: [{ NOT: { secret: { startsWith: current } } }, { previousSecret: { not: null }, NOT: { previousSecret: { startsWith: current } } }] },
  });
  let rotated = 0;
  for (const subscription of stale) {
    const owner = { orgId: subscription.orgId, subscriptionId: subscription.id };
    const reseal = (sealed: string) => keyring.sealSubscriptionSecret(keyring.openSubscriptionSecret(sealed, owner), owner);
    const { count } = await db.subscription.updateMany({
      where: { id: subscription.id, secret: subscription.secret, previousSecret: subscription.previousSecret },
      data: { secret: reseal(subscription.secret), previousSecret: subscription.previousSecret === null ? null : reseal(subscription.previousSecret) },
    });
    rotated += count;
  }
  return rotated;
}
