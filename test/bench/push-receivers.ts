// A child process holding many WebSocket sessions that wait for one key's invalidation push, so the sessions of the
// push benchmark are received outside the process that sends them (test/bench/push-floor.ts). Times are epoch ms
// (performance.timeOrigin + now), comparable across the processes of one machine. Driven over IPC; bounded waits.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { RespDecoder, RespPush, encodeCommand } from '../../shared/resp/index.ts';

export type ReceiverRequest =
  /** Opens `count` sessions to `url`, as the group `group` (one group per server under test). */
  | { type: 'open'; id: number; group: string; url: string; token: string | null; count: number }
  /** Bridge sessions: TRACKED.GET `key` on every session of the group (re-arms the one-shot registration). */
  | { type: 'arm'; id: number; group: string; key: string }
  /** Waits until every session of the group had a push since its last collect (at most `timeoutMs`); the arrival times. */
  | { type: 'collect'; id: number; group: string; timeoutMs: number }
  | { type: 'close'; id: number };

export type ReceiverReply = { id: number; ok: true; arrivals?: number[]; missing?: number } | { id: number; ok: false; error: string };

const now = () => performance.timeOrigin + performance.now();

interface Receiver {
  ws: WebSocket;
  decoder: RespDecoder;
  arrivedAt: number | null;
  onReply: (() => void) | null;
}

const groups = new Map<string, Receiver[]>();
let onArrival: (() => void) | null = null;
const group = (name: string): Receiver[] => groups.get(name) ?? [];

function open(url: string, token: string | null): Promise<Receiver> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: token === null ? {} : { Authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const receiver: Receiver = { ws, decoder: new RespDecoder(), arrivedAt: null, onReply: null };
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      const at = now();
      for (const value of receiver.decoder.feed(data)) {
        if (value instanceof RespPush) {
          if (receiver.arrivedAt === null) {
            receiver.arrivedAt = at;
            onArrival?.();
          }
        } else {
          receiver.onReply?.();
        }
      }
    });
    ws.once('open', () => resolve(receiver));
    ws.once('error', reject);
  });
}

async function arm(receivers: Receiver[], key: string): Promise<void> {
  const command = encodeCommand(['TRACKED.GET', key, 600_000]);
  await Promise.all(receivers.map((r) => new Promise<void>((resolve) => {
    r.onReply = () => { r.onReply = null; resolve(); };
    r.ws.send(command);
  })));
}

function collect(receivers: Receiver[], timeoutMs: number): Promise<{ arrivals: number[]; missing: number }> {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      onArrival = null;
      const arrivals = receivers.flatMap((r) => (r.arrivedAt === null ? [] : [r.arrivedAt]));
      for (const r of receivers) r.arrivedAt = null;
      resolve({ arrivals, missing: receivers.length - arrivals.length });
    };
    const timer = setTimeout(finish, timeoutMs);
    const check = () => { if (receivers.every((r) => r.arrivedAt !== null)) finish(); };
    onArrival = check;
    check();
  });
}

async function handle(request: ReceiverRequest): Promise<ReceiverReply> {
  switch (request.type) {
    case 'open': {
      const receivers = group(request.group);
      groups.set(request.group, receivers);
      for (let i = 0; i < request.count; i++) receivers.push(await open(request.url, request.token));
      return { id: request.id, ok: true };
    }
    case 'arm':
      await arm(group(request.group), request.key);
      return { id: request.id, ok: true };
    case 'collect':
      return { id: request.id, ok: true, ...(await collect(group(request.group), request.timeoutMs)) };
    case 'close':
      for (const r of [...groups.values()].flat()) r.ws.terminate();
      setImmediate(() => process.exit(0));
      return { id: request.id, ok: true };
  }
}

process.on('message', (request: ReceiverRequest) => {
  handle(request).then((reply) => process.send!(reply), (error: unknown) => process.send!({ id: request.id, ok: false, error: String(error) }));
});
// Parent gone: nothing left to receive for.
process.on('disconnect', () => process.exit(0));
