// `npm start`: the whole local stack on loopback — a Valkey server (unless VALKEY_URL is set), the bridge with a
// fresh token, the demo origin, and `wrangler dev` running the example app — then the curl lines to try it.
// SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) stop everything it started. Every variable it reads is
// in the README ("npm start" variables); a bad one or a port in use is one line on stderr and exit code 1.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { findValkeyServer } from '../support/find-valkey-server.mjs';
import { startValkeyCluster } from '../support/valkey-cluster.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';
import { startDemoOrigin, type DemoOrigin } from './demo-origin.ts';
import { startProcess, waitForHttp, type ManagedProcess } from './processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';

/** A setting the user has to change (the message says which). */
class StartError extends Error {
  override name = 'StartError';
}

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) throw new StartError(`${name}=${raw} is not a TCP port (1-65535)`);
  return port;
}

/**
 * Holds `port` bound until the returned release is called, right before the process that serves it starts: a port
 * only probed could be handed to a Valkey node (or its cluster bus) started meanwhile on a "free" port.
 */
function reservePort(port: number, name: string): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    const holder = createServer();
    holder.once('error', () => reject(new StartError(`port ${port} on ${HOST} is in use (another npm start?): stop what uses it, or set ${name}=<another port>`)));
    holder.listen(port, HOST, () => resolve(() => new Promise((released) => holder.close(() => released()))));
  });
}

/** Writes to a closed terminal fail with EIO/EPIPE after SIGHUP; that must not crash the clean-up. */
function ignoreClosedTerminal(): void {
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}

async function main(): Promise<void> {
  ignoreClosedTerminal();
  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));
  // `npm start` killed on its own (SIGTERM or SIGKILL to npm, not its group) does not reach us: notice the orphaning.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) void stopAll(0); }, 500).unref();

  try {
    const appPort = portFromEnv('PORT', 8787);
    const bridgePort = portFromEnv('BRIDGE_PORT', 7379);
    const originPort = portFromEnv('ORIGIN_PORT', 8788);
    const releaseApp = await reservePort(appPort, 'PORT');
    cleanups.push(releaseApp);
    const releaseBridge = await reservePort(bridgePort, 'BRIDGE_PORT');
    cleanups.push(releaseBridge);
    const releaseOrigin = await reservePort(originPort, 'ORIGIN_PORT');
    cleanups.push(releaseOrigin);

    let valkeyUrl = process.env.VALKEY_URL;
    // VALKEY_CLUSTER=true: a local cluster of 3 primaries + 3 replicas instead of one server (the bridge reads the
    // same variable and runs in cluster mode).
    const clusterMode = /^(true|1|yes)$/i.test(process.env.VALKEY_CLUSTER ?? '');
    if (!valkeyUrl && clusterMode) {
      findValkeyServer({ install: true });
      console.log('starting a local Valkey Cluster (3 primaries + 3 replicas) ...');
      const cluster = await startValkeyCluster();
      cleanups.push(() => cluster.stop());
      valkeyUrl = cluster.seedUrls;
    } else if (!valkeyUrl) {
      findValkeyServer({ install: true });
      const server: ValkeyServer = await startValkeyServer({ host: HOST });
      cleanups.push(() => server.stop());
      valkeyUrl = server.url;
    }

    const token = randomBytes(24).toString('base64url');
    // From source (like wrangler dev runs the app's source), so npm start needs no build.
    await releaseBridge();
    const bridge: ManagedProcess = startProcess('bridge', process.execPath, ['--import', 'tsx', 'bridge/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, VALKEY_URL: valkeyUrl, BRIDGE_HOST: HOST, BRIDGE_PORT: String(bridgePort), BRIDGE_TOKEN: token },
    });
    cleanups.push(() => bridge.stop());
    await waitForHttp(`http://${HOST}:${bridgePort}/healthz`, bridge, 20_000);

    await releaseOrigin();
    const origin: DemoOrigin = await startDemoOrigin(originPort, HOST, (line) => console.log(line));
    cleanups.push(() => origin.close());

    await releaseApp();
    const wrangler: ManagedProcess = startProcess('wrangler', process.execPath, [
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
  valkey${clusterMode ? ' cluster     ' : '              '}${valkeyUrl}
  demo origin         ${origin.url}   (loads per key: ${origin.url}/__loads)

Try it (watch the x-cache header):
  curl -i ${app}/v/hello             # x-cache: loaded   (the origin logs load #1)
  curl -i ${app}/v/hello             # x-cache: hit      (the coordinator's local copy)
  curl -i -X DELETE ${app}/v/hello   # 204, x-cache: del (every coordinator drops its copy)

Press Ctrl-C to stop everything.`);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`npm start: ${message}`);
    await stopAll(1);
  }
}

void main();
