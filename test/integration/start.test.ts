// `npm start` as a user runs it: the whole stack comes up, the three printed curl lines work (miss, hit, delete),
// and closing the terminal (SIGHUP to its process group) stops everything it started — no process of its tree
// survives; a port in use is one line naming the variable to set, and exit code 1.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';

/** Every live descendant of `pid`, read from /proc (Linux). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number) => { for (const c of children.get(p) ?? []) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

/** Running (a zombie waiting to be reaped counts as gone: it holds no resources and runs nothing). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it.each([
    { stack: 'one server', VALKEY_CLUSTER: '' },
    // VALKEY_CLUSTER=true: a local 3+3 Valkey Cluster and a cluster-mode bridge, torn down the same way.
    { stack: 'a local cluster', VALKEY_CLUSTER: 'true' },
  ])('serves the printed curl lines and leaves no process behind when the terminal closes (SIGHUP): $stack', async ({ VALKEY_CLUSTER }) => {
    const [appPort, bridgePort, originPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(appPort), BRIDGE_PORT: String(bridgePort), ORIGIN_PORT: String(originPort), VALKEY_CLUSTER },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, like a shell job, so SIGINT can go to the group as Ctrl-C does
    });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`npm start did not come up within 120 s:\n${output}`)), 120_000);
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Press Ctrl-C')) { clearTimeout(timer); resolve(); }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        void exited.then((code) => { clearTimeout(timer); reject(new Error(`npm start exited (${code}):\n${output}`)); });
      });
      const curls = output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl '));
      expect(curls).toHaveLength(3);
      if (VALKEY_CLUSTER) {
        const health = await (await fetch(`http://127.0.0.1:${bridgePort}/healthz`)).json() as { ok: boolean; nodes?: unknown[] };
        expect(health).toMatchObject({ ok: true });
        expect(health.nodes).toHaveLength(3);
      }
      const run = async (line: string) => {
        const method = line.includes('-X DELETE') ? 'DELETE' : 'GET';
        const url = line.split(' ').find((w) => w.startsWith('http://'))!;
        expect(new URL(url).port).toBe(String(appPort));
        const res = await fetch(url, { method });
        await res.text();
        return { status: res.status, xCache: res.headers.get('x-cache') };
      };
      expect(await run(curls[0]!)).toEqual({ status: 200, xCache: 'loaded' });
      expect(await run(curls[1]!)).toEqual({ status: 200, xCache: 'hit' });
      expect(await run(curls[2]!)).toEqual({ status: 204, xCache: 'del' });

      const tree = descendants(child.pid!);
      expect(tree.length).toBeGreaterThanOrEqual(4); // npm → sh → node, valkey, bridge, wrangler, workerd
      // Closing the terminal sends SIGHUP to the whole foreground process group (Ctrl-C is SIGINT, the same path).
      process.kill(-child.pid!, 'SIGHUP');
      // npm itself dies of SIGHUP at once; the stack's own process then stops the rest. Wait (bounded) for all.
      const deadline = Date.now() + 30_000;
      let survivors = tree.filter(alive);
      while (survivors.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        survivors = tree.filter(alive);
      }
      expect(survivors.map((pid) => `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`)).toEqual([]);
    } finally {
      for (const pid of descendants(child.pid ?? 0)) process.kill(pid, 'SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 180_000);

  it('says in one line which port is in use and which variable to set, and exits 1', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const child = spawn('npm', ['start'], { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toEqual([`npm start: port ${port} on 127.0.0.1 is in use (another npm start?): stop what uses it, or set PORT=<another port>`]);
    } finally {
      busy.close();
    }
  }, 30_000);
});
