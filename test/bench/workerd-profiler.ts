// A V8 CPU profile of one workerd isolate over the DevTools protocol (Profiler.start / Profiler.stop through
// Miniflare's inspector proxy): what the isolate's JavaScript costs while `work` runs, to split a figure measured
// from outside into the Worker's own time and the rest (sockets, the bridge, Valkey, waiting).
import WebSocket from 'ws';
import type { CpuProfile } from './profile-summary.ts';

const REPLY_TIMEOUT_MS = 15_000;

/** Runs `work` with the isolate behind `inspectorUrl` under the sampling profiler; returns its result and the profile. */
export async function profileIsolate<T>(inspectorUrl: string, work: () => Promise<T>, samplingIntervalUs = 100): Promise<{ result: T; profile: CpuProfile }> {
  const socket = new WebSocket(inspectorUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (waiter === undefined) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
    else waiter.resolve(message.result);
  });
  const send = (method: string, params: object = {}): Promise<unknown> => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`inspector: no reply to ${method} in ${REPLY_TIMEOUT_MS} ms`)); }, REPLY_TIMEOUT_MS);
    pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    socket.send(JSON.stringify({ id, method, params }));
  });
  try {
    await send('Profiler.enable');
    await send('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await send('Profiler.start');
    const result = await work();
    const { profile } = await send('Profiler.stop') as { profile: CpuProfile };
    return { result, profile };
  } finally {
    socket.close();
  }
}
