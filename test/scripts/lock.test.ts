// scripts/lock.ts, which lets test files running at once install a tool on first use one at a
// time: holders never overlap, a waiter gives up after its bound with a sentence that says what
// it waited for, and a holder killed with SIGKILL does not block the others for good.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { exclusively } from '../../scripts/lock.ts';

const LOCK = fileURLToPath(new URL('../../scripts/lock.ts', import.meta.url));

/** A process that takes the lock at `path`, notes when it holds it in `log`, holds it `ms`, and exits. */
function holder(path: string, log: string, ms: number) {
  const script = `
    import { appendFileSync } from 'node:fs';
    import { exclusively } from ${JSON.stringify(LOCK)};
    await exclusively(${JSON.stringify(path)}, 'the test', async () => {
      appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
      await new Promise((resolve) => setTimeout(resolve, ${ms}));
      appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return { child, exited: new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr }))) };
}

t.test('processes asking at once hold the lock one after the other', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-lock-'));
  const log = join(dir, 'log');
  const holders = Array.from({ length: 4 }, () => holder(join(dir, 'tool'), log, 300));
  const ends = await Promise.all(holders.map((h) => h.exited));
  t.same(
    ends.map((end) => end.code),
    [0, 0, 0, 0],
    ends.map((end) => end.stderr).join(''),
  );
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  t.equal(lines.length, 8, 'each held it once');
  for (let i = 0; i < lines.length; i += 2) {
    t.equal(lines[i + 1], lines[i]!.replace('in', 'out'), `holder ${i / 2 + 1} left before the next came in`);
  }
});

t.test('a waiter gives up after its bound, saying what it waited for', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-lock-'));
  const log = join(dir, 'log');
  const busy = holder(join(dir, 'tool'), log, 5000);
  while (!(await readFile(log, 'utf8').catch(() => '')).includes('in ')) await new Promise((resolve) => setTimeout(resolve, 50));
  await t.rejects(
    exclusively(join(dir, 'tool'), 'installing the tool', async () => t.fail('must not get the lock'), 1000),
    new Error(`Waited 1 s for another process to finish installing the tool (${join(dir, 'tool')}.lock); giving up.`),
  );
  busy.child.kill('SIGKILL');
  await busy.exited;
});

t.test('a holder killed with SIGKILL leaves a lock that the next one takes over', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-lock-'));
  const log = join(dir, 'log');
  const killed = holder(join(dir, 'tool'), log, 60_000);
  while (!(await readFile(log, 'utf8').catch(() => '')).includes('in ')) await new Promise((resolve) => setTimeout(resolve, 50));
  killed.child.kill('SIGKILL');
  await killed.exited;
  let held = false;
  await exclusively(join(dir, 'tool'), 'the test', async () => {
    held = true;
  });
  t.ok(held, 'taken over once the dead holder stopped refreshing it');
});
