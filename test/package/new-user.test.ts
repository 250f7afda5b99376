// A new user, end to end: pack the package (prepack builds it) from a copy of the sources, install the tarball into
// a fresh project with Cloudflare's template tsconfig and the README's wrangler.toml, type-check a Worker that uses
// every export plus every ```ts block of the README, bundle it (wrangler deploy --dry-run), install the bridge's
// peers and run the installed bridge against a real server, and serve the Worker with wrangler dev against it.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDemoOrigin, type DemoOrigin } from '../stack/demo-origin.ts';
import { startProcess, waitForHttp, type ManagedProcess } from '../stack/processes.ts';
import { ROOT } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const STEP_TIMEOUT_MS = 120_000;
const NOT_CHECKED = '<!-- not-checked -->';
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/** Runs a command to completion (bounded); rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string, timeoutMs = STEP_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(command, args, {
      cwd,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} in ${cwd} failed (${code ?? signal}):\n${output}`));
    });
  });
}

/** The README's ```ts blocks, except those right after a `<!-- not-checked -->` line. */
export function readmeTsBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`README.md: unterminated code block at line ${i + 1}`);
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    if (lines[before]?.trim() !== NOT_CHECKED) blocks.push(lines.slice(i + 1, end).join('\n') + '\n');
    i = end;
  }
  return blocks;
}

/** The README's complete wrangler.toml: the ```toml block that has a `main`. */
function readmeWranglerToml(markdown: string): string {
  const match = /```toml\n((?:(?!```)[\s\S])*?^main = [\s\S]*?)```/m.exec(markdown);
  if (!match) throw new Error('README.md has no complete wrangler.toml block (a ```toml block with main = ...)');
  return match[1]!;
}

describe('a new user of the package', () => {
  const work = mkdtempSync(join(tmpdir(), 'valkeyaside-new-user-'));
  const app = join(work, 'app');
  const token = `new-user-${Math.random().toString(36).slice(2)}-token`;
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }, 30_000);

  let tarball = '';
  it('packs only what users need, and the build runs on prepack', async () => {
    // A clean copy of the sources (no dist/), so prepack's build is what produces the package.
    const source = join(work, 'source');
    for (const entry of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'worker', 'bridge', 'shared', 'docs']) {
      cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'));
    const packed = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], source)
      .then((out) => out.slice(out.indexOf('\n[') + 1))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(work, packed[0]!.filename);
    const paths = packed[0]!.files.map((f) => f.path);
    expect(paths).toContain('dist/worker/index.js');
    expect(paths).toContain('dist/worker/index.d.ts');
    expect(paths).toContain('dist/worker/index.js.map');
    expect(paths).toContain('dist/bridge/main.js');
    expect(paths.filter((p) => /^(test|\.ci|worker\/app)\/|^wrangler\.toml$|tsconfig|\.tsbuildinfo$/.test(p))).toEqual([]);
  }, STEP_TIMEOUT_MS);

  it('installs for a Worker without any other package', async () => {
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-worker', private: true, type: 'module' }, null, 2));
    await run('npm', ['install', '--prefer-offline', tarball], app);
    expect(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['valkeyaside-edge']);
  }, STEP_TIMEOUT_MS);

  it('type-checks a Worker using every export, and every ```ts block of the README, under the template tsconfig', async () => {
    const dev = ['wrangler', 'typescript'].map((n) => `${n}@${rootPackage.devDependencies[n]}`);
    await run('npm', ['install', '--prefer-offline', '--save-dev', ...dev], app, 180_000);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    writeFileSync(join(app, 'wrangler.toml'), readmeWranglerToml(readme));
    writeFileSync(join(app, '.dev.vars'), `BRIDGE_TOKEN=${token}\n`);
    cpSync(join(ROOT, 'test/package/consumer'), app, { recursive: true });
    const blocks = readmeTsBlocks(readme);
    expect(blocks.length).toBeGreaterThan(0);
    mkdirSync(join(app, 'readme'));
    const handlers: string[] = [];
    blocks.forEach((block, i) => {
      writeFileSync(join(app, 'readme', `block-${i}.ts`), block.includes('export') ? block : `${block}export {};\n`);
      if (/^export default /m.test(block)) handlers.push(`import readme${i} from '../readme/block-${i}';`);
    });
    const names = handlers.map((line) => line.split(' ')[1]);
    writeFileSync(join(app, 'src', 'readme-handlers.ts'),
      `// Generated by new-user.test.ts: the README's Worker examples, by index.\n${handlers.join('\n')}\n` +
      `export const README_HANDLERS: ExportedHandler<Env>[] = [${names.join(', ')}];\n`);
    await run(process.execPath, ['node_modules/wrangler/bin/wrangler.js', 'types'], app);
    const env = readFileSync(join(app, 'worker-configuration.d.ts'), 'utf8');
    expect(env).toMatch(/CACHE_ASIDE: DurableObjectNamespace<import\("\.\/src\/index"\)\.CacheAsideCoordinator>/);
    // The Env the README shows is what wrangler types writes.
    const shown = /```text\ninterface Env \{\n([\s\S]*?)\n\}/.exec(readme)?.[1]?.split('\n').map((l) => l.trim()) ?? [];
    expect(shown.length).toBeGreaterThan(0);
    for (const member of shown) expect(env).toContain(member);
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], app);
  }, 240_000);

  it('bundles with wrangler deploy --dry-run, with nothing of the bridge inside', async () => {
    await run(process.execPath, ['node_modules/wrangler/bin/wrangler.js', 'deploy', '--dry-run', '--outdir', 'out'], app);
    const bundle = readFileSync(join(app, 'out', 'index.js'), 'utf8');
    expect(bundle).toMatch(/export \{[^}]*CacheAsideCoordinator/);
    expect(bundle).not.toMatch(/iovalkey|prom-client|from "ws"/);
  }, STEP_TIMEOUT_MS);

  let bridgeUrl = '';
  it('runs the installed bridge: a clear message without its peers, then serving once they are installed', async () => {
    const bin = join(app, 'node_modules', '.bin', 'valkeyaside-bridge');
    const missing = await run(bin, ['--token', token], app).then(() => '', (err: Error) => err.message);
    expect(missing).toContain('failed (1)');
    expect(missing).toContain('valkeyaside-bridge: missing @hono/node-server, hono, iovalkey, prom-client, ws');
    expect(missing).not.toMatch(/\n\s+at /);

    const peers = Object.keys(rootPackage.peerDependencies).map((n) => `${n}@${rootPackage.devDependencies[n]}`);
    await run('npm', ['install', '--prefer-offline', ...peers], app);
    const server: ValkeyServer = await startValkeyServer();
    stops.push(() => server.stop());
    const port = await freePort();
    const bridge: ManagedProcess = startProcess('bridge', bin, ['--valkey-url', server.url, '--port', String(port), '--token', token, '--log-level', 'warn'], { cwd: app });
    stops.push(() => bridge.stop());
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, bridge, 20_000);
    bridgeUrl = `ws://127.0.0.1:${port}/resp`;
  }, STEP_TIMEOUT_MS);

  it('serves the Worker with wrangler dev: every check and the README example pass', async () => {
    const origin: DemoOrigin = await startDemoOrigin(0);
    stops.push(() => origin.close());
    const port = await freePort();
    const wrangler = startProcess('wrangler', process.execPath, ['node_modules/wrangler/bin/wrangler.js', 'dev', '--ip', '127.0.0.1',
      '--port', String(port), '--inspector-port', '0', '--show-interactive-dev-session=false', '--log-level', 'warn',
      '--var', `BRIDGE_URL:${bridgeUrl}`, '--var', `ORIGIN_URL:${origin.url}`], {
      cwd: app,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
    });
    stops.push(() => wrangler.stop());
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/checks`, wrangler, 60_000);
    const { checks } = (await (await fetch(`${base}/checks`)).json()) as { checks: string[] };
    const results: Record<string, unknown> = {};
    for (const name of checks) results[name] = await (await fetch(`${base}/check/${name}`)).json();
    expect(results).toEqual(Object.fromEntries(checks.map((n) => [n, { ok: true }])));

    const res = await fetch(`${base}/readme/0?id=1`);
    const body = (await res.json()) as { html: string; user: { id: string; name: string } };
    expect(res.status).toBe(200);
    expect(body.html).toContain('value of page:1');
    expect(body.user).toEqual({ id: '1', name: expect.stringContaining('value of user-name/1') });
  }, STEP_TIMEOUT_MS);
});
