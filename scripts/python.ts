// The Python tools the tests use (schemathesis, …), installed from PyPI into a virtual
// environment the project owns (.venv), so nothing is assumed installed beyond python3. Made or
// updated when a test first asks for it, by one process while the others wait.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exclusively } from './lock.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VENV = join(ROOT, '.venv');
const REQUIREMENTS = join(ROOT, 'scripts', 'python-requirements.txt');
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** The bin directory of the virtual environment, created or updated to the pinned requirements. */
export async function pythonTools(): Promise<string> {
  const wanted = createHash('sha256')
    .update(await readFile(REQUIREMENTS))
    .digest('hex');
  const stamp = join(VENV, '.requirements.sha256');
  const bin = join(VENV, 'bin');
  const current = async () => existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted;
  if (await current()) return bin;
  await exclusively(VENV, 'installing the Python test tools', async () => {
    // Another test may have installed them while this one waited.
    if (await current()) return;
    process.stderr.write('Installing the pinned Python test tools into .venv …\n');
    const run = promisify(execFile);
    if (!existsSync(join(bin, 'python'))) await run('python3', ['-m', 'venv', VENV], { timeout: INSTALL_TIMEOUT_MS });
    await run(join(bin, 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: INSTALL_TIMEOUT_MS,
    });
    await writeFile(stamp, wanted);
  });
  return bin;
}
