// What the benchmark reads of a process from /proc: its CPU time and its peak resident memory,
// for itself or with every process it started (PostgreSQL's backends, n8n's task runner).
import { readdir, readFile } from 'node:fs/promises';

const TICKS_PER_SECOND = 100;

interface Stat {
  pid: number;
  ppid: number;
  cpuSeconds: number;
}

async function stat(pid: number): Promise<Stat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // The command name may hold spaces and parentheses: the fields start after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
}

/** The process and all its descendants alive now. */
export async function tree(root: number): Promise<number[]> {
  const all = (await Promise.all((await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map((name) => stat(Number(name))))).filter(
    (entry): entry is Stat => entry !== undefined,
  );
  const found = [root];
  for (let i = 0; i < found.length; i++) for (const child of all) if (child.ppid === found[i]) found.push(child.pid);
  return found;
}

/** CPU seconds (user and system) used so far by the process and its descendants alive now. */
export async function cpuSeconds(root: number): Promise<number> {
  const entries = await Promise.all((await tree(root)).map(stat));
  return entries.reduce((sum, entry) => sum + (entry?.cpuSeconds ?? 0), 0);
}

/** The highest resident set size of the process so far, in MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
}

/** Counts CPU seconds of a set of processes over a window, processes that exit included up to their last reading. */
export class CpuMeter {
  readonly #start = new Map<string, number>();
  readonly #last = new Map<string, number>();

  async begin(name: string, root: number): Promise<void> {
    const now = await cpuSeconds(root);
    this.#start.set(name, now);
    this.#last.set(name, now);
  }

  /** Reads a process again (before it is stopped or killed). */
  async read(name: string, root: number): Promise<void> {
    const now = await cpuSeconds(root);
    if (now > 0) this.#last.set(name, now);
  }

  /** A process that replaces one that died (a restarted worker) adds to its name. */
  async rebase(name: string, root: number): Promise<void> {
    const used = (this.#last.get(name) ?? 0) - (this.#start.get(name) ?? 0);
    const now = await cpuSeconds(root);
    this.#start.set(name, now - used);
    this.#last.set(name, now);
  }

  used(): Record<string, number> {
    return Object.fromEntries([...this.#start].map(([name, start]) => [name, (this.#last.get(name) ?? start) - start]));
  }
}
