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

/** CPU seconds (user and system) used so far by the process and by each of its descendants alive now, by pid. */
async function cpuByPid(root: number): Promise<Map<number, number>> {
  const entries = await Promise.all((await tree(root)).map(stat));
  return new Map(entries.filter((entry) => entry !== undefined).map((entry) => [entry.pid, entry.cpuSeconds]));
}

/** The highest resident set size of the process so far, in MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
}

/** The resident set size of the process now, in MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
}

/** Reads the process's RSS every `everyMs` until stopped; `stop` answers the readings in order. */
export function sampleRss(pid: number, everyMs: number): { stop(): Promise<number[]> } {
  const samples: number[] = [];
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      samples.push(await rssMb(pid));
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      sampling = false;
      await loop;
      return samples;
    },
  };
}

/**
 * Counts CPU seconds of a set of processes and their descendants over a window. Each process is
 * counted up to its last reading, so processes that end during the window (a killed worker, the
 * PostgreSQL backends of its connections) are read often enough to keep what they used.
 */
export class CpuMeter {
  readonly #start = new Map<string, Map<number, number>>();
  readonly #last = new Map<string, Map<number, number>>();

  async begin(name: string, root: number): Promise<void> {
    const now = await cpuByPid(root);
    this.#start.set(name, now);
    this.#last.set(name, new Map(now));
  }

  /** Reads a process and its descendants again; a root that replaces one that died (a restarted worker) adds to the name. */
  async read(name: string, root: number): Promise<void> {
    const last = this.#last.get(name) ?? new Map<number, number>();
    for (const [pid, seconds] of await cpuByPid(root)) last.set(pid, seconds);
    this.#last.set(name, last);
  }

  used(): Record<string, number> {
    return Object.fromEntries(
      [...this.#last].map(([name, last]) => {
        const start = this.#start.get(name) ?? new Map<number, number>();
        let used = 0;
        for (const [pid, seconds] of last) used += seconds - (start.get(pid) ?? 0);
        return [name, used];
      }),
    );
  }
}

/** Measures the CPU of processes (by name) over `work`, reading them every half second so that those that end keep their share. */
export async function metered<T>(processes: Record<string, number>, work: (meter: CpuMeter) => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const meter = new CpuMeter();
  const readAll = async () => {
    for (const [name, pid] of Object.entries(processes)) await meter.read(name, pid);
  };
  for (const [name, pid] of Object.entries(processes)) await meter.begin(name, pid);
  const reading = setInterval(readAll, 500);
  const value = await work(meter).finally(() => clearInterval(reading));
  await readAll();
  return { value, cpu: meter.used() };
}
