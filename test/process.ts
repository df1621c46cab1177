// Runs the service as a process, as `npm start` does (from source), and waits until it answers.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../src/db/embedded.ts';

const TEST_KEY = randomBytes(32).toString('base64');

export interface ServerProcess {
  process: ChildProcess;
  base: string;
  output: () => string;
  exited: Promise<number | null>;
}

export interface FailedStart {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnServer(
  env: Record<string, string>,
  port: number,
  entry = 'src/server.ts',
): { child: ChildProcess; output: () => string; stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [entry], {
    // One credentials key for every server a test file starts (never the development key file).
    // Metrics on a free port, so that processes started at once do not collide.
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info', TOLSTOY_ENCRYPTION_KEY: TEST_KEY, TOLSTOY_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}

export async function startServer(env: Record<string, string>, attempts = 3): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const { child, output, exited } = spawnServer(env, port);
  // A port found free can be handed out again before the server binds it (its own metrics
  // listener on port 0 took it once): such a start is tried again, its metrics elsewhere.
  const lostPort = async () => (await exited) !== 0 && output().includes('the address is in use') && attempts > 1;
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if (
      await fetch(`${base}/health`)
        .then((r) => r.ok)
        .catch(() => false)
    )
      return { process: child, base, output, exited };
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.exitCode !== null && (await lostPort())) return startServer({ ...env, PORT: String(port) }, attempts - 1);
  child.kill('SIGKILL');
  throw new Error(`the server did not start: ${output()}`);
}

/** Starts the service expecting it to refuse, and returns how it ended. */
export async function failedStart(env: Record<string, string>): Promise<FailedStart> {
  const { child, stdout, stderr, exited } = spawnServer(env, await freePort());
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await exited;
  clearTimeout(timer);
  return { code, stdout: stdout(), stderr: stderr() };
}

export interface WorkerProcess {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs `npm run worker` (from source) and waits until it works. */
export async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const { child, output, exited } = spawnServer(env, 0, 'src/worker.ts');
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if (output().includes('Worker running')) return { process: child, output, exited };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`the worker did not start: ${output()}`);
}

/** The messages of a process's JSON log lines, one per line (a line that is not JSON as it is). */
export function messages(output: string): string {
  return output
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return String(JSON.parse(line).msg);
      } catch {
        return line;
      }
    })
    .join('\n');
}
