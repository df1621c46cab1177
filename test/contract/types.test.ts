import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

t.test('the generated types match the spec (npm run generate:types refreshes them)', async (t) => {
  const run = promisify(execFile);
  const result = await run('node_modules/.bin/openapi-typescript', [
    'openapi/openapi.yaml',
    '-o',
    'src/generated/openapi.ts',
    '--default-non-nullable=false',
    '--check',
  ]).catch((error) => error);
  t.equal(result.code ?? 0, 0, String(result.stderr ?? ''));
});
