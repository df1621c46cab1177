// The linter and formatter (Biome, biome.jsonc) find nothing anywhere in the tree; `npm run format` fixes what can be fixed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

t.test('biome ci reports no problem', async (t) => {
  const { stdout, stderr } = await promisify(execFile)('node_modules/.bin/biome', ['ci', '--colors=off', '.'], { cwd: new URL('..', import.meta.url) }).catch(
    (error) => error,
  );
  t.match(`${stdout}${stderr}`, /Checked \d+ files/);
  t.notMatch(`${stdout}${stderr}`, /Found \d+ (error|warning)/, `${stdout}${stderr}`.slice(-4000));
});
