// The fan-out floor, in a child process: the least a server can do to push one key's invalidation to every session.
// It tracks the key the way the bridge does (CLIENT TRACKING redirected to a subscriber) and, on the invalidation,
// writes one pre-encoded push frame to every socket in one loop. No auth, no key index, no per-session queue.
import { Redis } from 'iovalkey';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodedPush } from '../../bridge/push-frames.ts';

export type FloorRequest = { type: 'arm'; id: number; key: string } | { type: 'close'; id: number };
export type FloorMessage = { type: 'ready'; url: string } | { id: number; ok: true };

const [host, port] = [process.env.BENCH_VALKEY_HOST!, Number(process.env.BENCH_VALKEY_PORT)];
const sockets = new Set<WebSocket>();
const data = new Redis({ host, port, lazyConnect: true });
const sub = new Redis({ host, port, lazyConnect: true });
await data.connect();
await sub.connect();
const subId = Number(await sub.client('ID'));
await sub.subscribe('__redis__:invalidate');
await data.client('TRACKING', 'ON', 'REDIRECT', subId);
sub.on('messageBuffer', (_channel: Buffer, payload: unknown) => {
  for (const key of Array.isArray(payload) ? payload : [payload]) {
    if (!Buffer.isBuffer(key)) continue;
    const frame = encodedPush([key.toString('latin1')]);
    for (const ws of sockets) ws.send(frame, { binary: true });
  }
});
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => {
  sockets.add(ws);
  ws.on('close', () => sockets.delete(ws));
});
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
const address = wss.address() as { port: number };
process.on('message', async (request: FloorRequest) => {
  if (request.type === 'arm') await data.get(request.key);
  if (request.type === 'close') {
    for (const ws of sockets) ws.terminate();
    data.disconnect();
    sub.disconnect();
    setImmediate(() => process.exit(0));
  }
  process.send!({ id: request.id, ok: true } satisfies FloorMessage);
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready', url: `ws://127.0.0.1:${address.port}/` } satisfies FloorMessage);
