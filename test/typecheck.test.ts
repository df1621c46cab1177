import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

t.test('source, scripts and tests type-check (handlers are typed from the generated contract types)', async (t) => {
  const result = await promisify(execFile)('node_modules/.bin/tsc', ['-p', 'tsconfig.json']).catch((error) => error);
  t.equal(result.code ?? 0, 0, `${result.stdout ?? ''}`);
});
