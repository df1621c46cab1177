// The benchmark harness must not rot: a smoke run, seconds long, on a small dataset. It fails
// when the three systems answer any scenario differently, or when a scenario meets errors.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

t.setTimeout(300_000);

t.test('npm run bench -- --smoke', async (t) => {
  const result = await promisify(execFile)(process.execPath, ['bench/run.ts', '--smoke'], { maxBuffer: 16 * 1024 * 1024 }).catch((error) => error);
  t.equal(result.code ?? 0, 0, `${result.stdout}${result.stderr}`);
  t.match(result.stdout, /Every system answers every scenario alike\./);
  const runs = String(result.stdout)
    .split('\n')
    .filter((line) => line.startsWith('round 1 '));
  t.equal(runs.length, 7 * 3, 'seven scenarios, three systems');
  t.ok(
    runs.every((line) => / errors 0 {2}non-2xx 0 /.test(line)),
    'no errors, no non-2xx',
  );
});
