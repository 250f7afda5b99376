// `npm start`: the whole local stack on loopback — a Valkey server (unless VALKEY_URL is set), the bridge with a
// fresh token, the demo origin, and `wrangler dev` running the example app — then the curl lines to try it.
// Ctrl-C stops everything it started.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { findValkeyServer } from '../support/find-valkey-server.mjs';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';
import { startDemoOrigin, type DemoOrigin } from './demo-origin.ts';
import { startProcess, waitForHttp, type ManagedProcess } from './processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}=${raw} is not a TCP port (1-65535)`);
  return port;
}

function assertPortFree(port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', () => reject(new Error(`port ${port} on ${HOST} is in use: stop what uses it, or set ${name}=<another port>`)));
    probe.listen(port, HOST, () => probe.close(() => resolve()));
  });
}

async function main(): Promise<void> {
  const appPort = portFromEnv('PORT', 8787);
  const bridgePort = portFromEnv('BRIDGE_PORT', 7379);
  const originPort = portFromEnv('ORIGIN_PORT', 8788);
  await assertPortFree(appPort, 'PORT');
  await assertPortFree(bridgePort, 'BRIDGE_PORT');
  await assertPortFree(originPort, 'ORIGIN_PORT');

  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    let valkeyUrl = process.env.VALKEY_URL;
    if (!valkeyUrl) {
      findValkeyServer({ install: true });
      const server: ValkeyServer = await startValkeyServer({ host: HOST });
      cleanups.push(() => server.stop());
      valkeyUrl = server.url;
    }

    const token = randomBytes(24).toString('base64url');
    const bridge: ManagedProcess = startProcess('bridge', process.execPath, ['bridge/bin.mjs'], {
      cwd: ROOT,
      env: { ...process.env, VALKEY_URL: valkeyUrl, BRIDGE_HOST: HOST, BRIDGE_PORT: String(bridgePort), BRIDGE_TOKEN: token },
    });
    cleanups.push(() => bridge.stop());
    await waitForHttp(`http://${HOST}:${bridgePort}/healthz`, bridge, 20_000);

    const origin: DemoOrigin = await startDemoOrigin(originPort, HOST, (line) => console.log(line));
    cleanups.push(() => origin.close());

    const wrangler: ManagedProcess = startProcess(process.execPath, process.execPath, [
      'node_modules/wrangler/bin/wrangler.js', 'dev', '--ip', HOST, '--port', String(appPort),
      '--inspector-port', '0', '--show-interactive-dev-session=false', '--log-level', 'warn',
      '--persist-to', '.wrangler/state',
      '--var', `BRIDGE_URL:ws://${HOST}:${bridgePort}/resp`, '--var', `BRIDGE_TOKEN:${token}`, '--var', `ORIGIN_URL:${origin.url}`,
    ], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
      echo: (line) => console.log(`wrangler: ${line}`),
    });
    cleanups.push(() => wrangler.stop());
    const app = `http://${HOST}:${appPort}`;
    await waitForHttp(`${app}/healthz`, wrangler, 90_000);

    console.log(`
valkeyaside-edge is running:
  app (wrangler dev)  ${app}
  bridge              ws://${HOST}:${bridgePort}/resp   (health: http://${HOST}:${bridgePort}/healthz, metrics: /metrics)
  valkey              ${valkeyUrl}
  demo origin         ${origin.url}   (loads per key: ${origin.url}/__loads)

Try it (watch the x-cache header: miss, then hit, then the delete):
  curl -i ${app}/v/hello
  curl -i ${app}/v/hello
  curl -i -X DELETE ${app}/v/hello

Press Ctrl-C to stop everything.`);
  } catch (err) {
    console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll(1);
  }
}

void main();
