import { readFile } from 'node:fs/promises';
import t from 'tap';
import { generateTypes, TYPES_PATH } from '../../scripts/generate-types.ts';

t.test('the generated types match the spec (npm run generate:types refreshes them)', async (t) => {
  t.equal(await readFile(TYPES_PATH, 'utf8'), await generateTypes());
});
