// The two-hop floor of the overhead bench, in a child process: the least a WebSocket-to-Valkey relay can do. Each
// session's binary messages go to its own TCP connection to Valkey as they are, and whatever Valkey answers goes back
// as one frame: no decoding, no allowlist, no tracking, no scheduling. What the bridge costs above it is its own.
import { connect } from 'node:net';
import { WebSocketServer } from 'ws';

const [host, port] = [process.env.BENCH_VALKEY_HOST!, Number(process.env.BENCH_VALKEY_PORT)];
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: true });
wss.on('connection', (ws) => {
  const valkey = connect({ host, port, noDelay: true });
  ws.on('message', (data: Buffer) => valkey.write(data));
  valkey.on('data', (data) => ws.send(data, { binary: true }));
  ws.on('close', () => valkey.destroy());
  valkey.on('close', () => ws.terminate());
  valkey.on('error', () => ws.terminate());
});
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
process.send?.({ type: 'ready', url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}` });
// Ends with the bench: the parent's exit closes the IPC channel.
process.on('disconnect', () => {
  for (const ws of wss.clients) ws.terminate();
  process.exit(0);
});
