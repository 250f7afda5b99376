// CPU time of other processes (bridge children, valkey-server) from /proc/<pid>/stat, so a benchmark can say what
// one command costs each process: the figure that predicts throughput on more cores. Linux only; 10 ms ticks.
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10;

/** User + system CPU time of `pid` so far (ms), or NaN where /proc cannot be read (not Linux, process gone). */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** Sums the CPU time `pids` spend while `work` runs (ms); this process's own time is measured with cpuUsage. */
export async function cpuDuring<T>(pids: ReadonlyMap<string, ReadonlyArray<number | undefined>>, work: () => Promise<T>): Promise<{ result: T; cpuMs: Map<string, number> }> {
  const sum = (list: ReadonlyArray<number | undefined>): number => list.reduce<number>((a, pid) => a + processCpuMs(pid), 0);
  const before = new Map<string, number>([...pids].map(([name, list]) => [name, sum(list)]));
  const own = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(own);
  const cpuMs = new Map<string, number>([...pids].map(([name, list]) => [name, sum(list) - before.get(name)!]));
  cpuMs.set('load generator', (used.user + used.system) / 1000);
  return { result, cpuMs };
}

/** Pids of this process's descendants whose command name is `name` (e.g. the `workerd` Miniflare spawns). */
export function descendantsNamed(name: string): number[] {
  const parentOf = new Map<number, number>();
  const commOf = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
      commOf.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    } catch {
      // gone meanwhile
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let at = parentOf.get(pid), hops = 0; at !== undefined && hops < 64; at = parentOf.get(at), hops++) if (at === process.pid) return true;
    return false;
  };
  return [...commOf].filter(([pid, comm]) => comm === name && isDescendant(pid)).map(([pid]) => pid);
}
