// `npm run credentials:rotate`: re-encrypts every tool's credentials with TOLSTOY_ENCRYPTION_KEY,
// opening those encrypted with TOLSTOY_ENCRYPTION_KEY_PREVIOUS. Run it after setting the new key
// and the previous one (README, "Tool credentials"); then the previous key can be removed.
import { readConfig } from '../src/config/config.ts';
import { loadKeyring, rotateCredentials } from '../src/config/encryption.ts';
import { createDatabase } from '../src/db/client.ts';
import { useEmbeddedPostgres } from '../src/db/embedded.ts';
import { locateDatabase } from '../src/db/source.ts';

try {
  const config = readConfig();
  const source = await locateDatabase(config, useEmbeddedPostgres);
  const keyring = await loadKeyring(config, source.urls.encryptionKeys);
  const db = createDatabase(source.urls.directUrl, { preparedStatements: false });
  try {
    const rotated = await rotateCredentials(db, keyring);
    console.log(`Re-encrypted the credentials of ${rotated} tool${rotated === 1 ? '' : 's'} with key ${keyring.currentId}.`);
  } finally {
    await db.$disconnect();
    await source.embedded?.stop();
  }
} catch (error) {
  console.error(`The credentials could not be re-encrypted: ${(error as Error).message}`);
  process.exit(1);
}
