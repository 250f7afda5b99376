// The benchmarks' CPU reader (test/bench/process-cpu.ts): /proc/<pid>/stat agrees with the process's own account of
// its CPU time, and an unknown process reads as NaN rather than as zero cost.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuDuring, descendantsNamed, processCpuMs } from '../bench/process-cpu.ts';

/** Burns `ms` of this process's CPU time (counted by cpuUsage, not by the clock). */
function burn(ms: number): void {
  const start = process.cpuUsage();
  let x = 0;
  for (let i = 0; i < 1e9; i++) {
    x += Math.sqrt(i);
    if (i % 100_000 === 0) {
      const used = process.cpuUsage(start);
      if ((used.user + used.system) / 1000 >= ms) break;
    }
  }
  expect(x).toBeGreaterThan(0);
}

describe('processCpuMs', () => {
  it('reads what this process spent, to within the 10 ms tick', () => {
    const before = processCpuMs(process.pid);
    const own = process.cpuUsage();
    burn(200);
    const used = process.cpuUsage(own);
    const read = processCpuMs(process.pid) - before;
    expect(read).toBeGreaterThanOrEqual((used.user + used.system) / 1000 - 30);
    expect(read).toBeLessThanOrEqual((used.user + used.system) / 1000 + 30);
  });

  it('reads NaN for no pid and for a process that has exited', () => {
    expect(processCpuMs(undefined)).toBeNaN();
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(processCpuMs(gone)).toBeNaN();
  });

  it('cpuDuring attributes the work to the load generator and names every group asked for', async () => {
    const { result, cpuMs } = await cpuDuring(new Map([['self', [process.pid]]]), async () => { burn(100); return 7; });
    expect(result).toBe(7);
    expect(cpuMs.get('load generator')).toBeGreaterThanOrEqual(100);
    expect(cpuMs.get('self')).toBeGreaterThanOrEqual(70);
  });
});

describe('descendantsNamed', () => {
  it('finds a child by its command name (how profile-miss finds the workerd Miniflare spawns), and not after it exits', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      expect(descendantsNamed('sleep')).toContain(child.pid);
      expect(descendantsNamed('no-such-command-name')).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    expect(descendantsNamed('sleep')).not.toContain(child.pid);
  });
});
