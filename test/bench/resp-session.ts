// A lean pipelining RESP client for load generation: over the bridge's WebSocket or straight TCP to Valkey, one
// batch of pre-encoded commands per send, replies matched by count, pushes timestamped on arrival. Unlike
// test/support/resp-ws-client.ts it keeps no per-reply timer or channel, so the client costs little per command.
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { RespDecoder, RespErrorReply, RespPush, encodeCommand, type RespValue } from '../../shared/resp/index.ts';

export type Command = ReadonlyArray<string | number | Uint8Array>;

/** Called for every invalidation push with its key count (null: drop everything) and the arrival time (performance.now). */
export type PushHandler = (keys: Uint8Array[] | null, at: number) => void;

interface Batch {
  remaining: number;
  readonly values: RespValue[] | null;
  readonly sentAt: number;
  resolve(values: RespValue[]): void;
  reject(error: Error): void;
}

const STALL_CHECK_MS = 1_000;

export class RespSession {
  /** Replies that were error replies, since open. */
  errors = 0;
  lastError: string | null = null;
  onPush: PushHandler | null = null;
  readonly #decoder = new RespDecoder({ maxBulkBytes: 64 * 1024 * 1024 });
  readonly #batches: Batch[] = [];
  #head = 0;
  #failure: Error | null = null;
  readonly #watchdog: NodeJS.Timeout;
  readonly #write: (bytes: Uint8Array) => void;
  readonly #end: () => void;
  readonly #stallMs: number;

  private constructor(write: (bytes: Uint8Array) => void, end: () => void, stallMs: number) {
    this.#write = write;
    this.#end = end;
    this.#stallMs = stallMs;
    // One timer per session, not per command: a batch older than stallMs fails everything pending.
    this.#watchdog = setInterval(() => {
      const batch = this.#batches[this.#head];
      if (batch && performance.now() - batch.sentAt > this.#stallMs) this.#fail(new Error(`no reply within ${this.#stallMs} ms`));
    }, STALL_CHECK_MS);
    this.#watchdog.unref();
  }

  /** A bridge session (WebSocket, binary frames). @throws when the upgrade fails or takes over `timeoutMs`. */
  static async bridge(url: string, token: string, options: { timeoutMs?: number; stallMs?: number } = {}): Promise<RespSession> {
    const ws = new WebSocket(url, [RESP_SUBPROTOCOL], { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`timed out connecting to ${url}`)); }, options.timeoutMs ?? 10_000);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('error', (err) => { clearTimeout(timer); reject(err); });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        res.resume();
        ws.terminate();
        reject(new Error(`upgrade refused with HTTP ${res.statusCode}`));
      });
    });
    const session = new RespSession((bytes) => ws.send(bytes, { binary: true }), () => ws.terminate(), options.stallMs ?? 10_000);
    ws.on('message', (data: Buffer) => session.#receive(data));
    ws.on('close', () => session.#fail(new Error('bridge session closed')));
    ws.on('error', (err) => session.#fail(err));
    return session;
  }

  /** A plain TCP connection to Valkey (RESP2 replies). */
  static async tcp(host: string, port: number, options: { timeoutMs?: number; stallMs?: number } = {}): Promise<RespSession> {
    const socket: Socket = tcpConnect({ host, port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`timed out connecting to ${host}:${port}`)); }, options.timeoutMs ?? 10_000);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
      socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
    const session = new RespSession((bytes) => socket.write(bytes), () => socket.destroy(), options.stallMs ?? 10_000);
    socket.on('data', (data: Buffer) => session.#receive(data));
    socket.on('close', () => session.#fail(new Error('valkey connection closed')));
    socket.on('error', (err) => session.#fail(err));
    return session;
  }

  /** Encodes commands into one buffer (one WebSocket message). */
  static encode(commands: readonly Command[]): Buffer {
    return Buffer.concat(commands.map((c) => encodeCommand(c)));
  }

  /** Commands sent and not yet answered. */
  get pending(): number {
    let n = 0;
    for (let i = this.#head; i < this.#batches.length; i++) n += this.#batches[i]!.remaining;
    return n;
  }

  /**
   * Sends pre-encoded `bytes` holding `replies` commands; resolves when all their replies have arrived (with the
   * values when `keep` is set, else an empty array).
   */
  send(bytes: Uint8Array, replies: number, keep = false): Promise<RespValue[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<RespValue[]>((resolve, reject) => {
      this.#batches.push({ remaining: replies, values: keep ? [] : null, sentAt: performance.now(), resolve, reject });
      this.#write(bytes);
    });
  }

  /** One command, its reply. */
  async call(...command: Command): Promise<RespValue> {
    return (await this.send(encodeCommand(command), 1, true))[0]!;
  }

  close(): void {
    clearInterval(this.#watchdog);
    this.#end();
    this.#fail(new Error('closed'));
  }

  #receive(data: Buffer): void {
    let values: RespValue[];
    try {
      values = this.#decoder.feed(data);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    for (const value of values) {
      if (value instanceof RespPush) {
        const keys = value.items[1];
        this.onPush?.(Array.isArray(keys) ? (keys as Uint8Array[]) : null, performance.now());
        continue;
      }
      const batch = this.#batches[this.#head];
      if (!batch) {
        this.#fail(new Error('a reply to no command'));
        return;
      }
      if (value instanceof RespErrorReply) {
        this.errors++;
        this.lastError = value.message;
      }
      batch.values?.push(value);
      if (--batch.remaining === 0) {
        this.#batches[this.#head++] = undefined as unknown as Batch;
        if (this.#head > 1024 && this.#head * 2 > this.#batches.length) {
          this.#batches.splice(0, this.#head);
          this.#head = 0;
        }
        batch.resolve(batch.values ?? []);
      }
    }
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    clearInterval(this.#watchdog);
    for (let i = this.#head; i < this.#batches.length; i++) this.#batches[i]!.reject(error);
    this.#batches.length = 0;
    this.#head = 0;
  }
}

/**
 * Opens up to `n` bridge sessions, `wave` at a time, stopping at the first wave with a failure (file
 * descriptors, the bridge's session limit) or when `timeoutMs` has passed: the caller measures what fits.
 */
export async function openBridgeSessions(
  url: string,
  token: string,
  n: number,
  options: { wave?: number; timeoutMs?: number; stallMs?: number } = {},
): Promise<{ sessions: RespSession[]; failure: string | null }> {
  const sessions: RespSession[] = [];
  const wave = options.wave ?? 200;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let failure: string | null = null;
  while (sessions.length < n && failure === null) {
    if (Date.now() > deadline) {
      failure = `stopped after ${options.timeoutMs ?? 60_000} ms`;
      break;
    }
    const size = Math.min(wave, n - sessions.length);
    const results = await Promise.allSettled(Array.from({ length: size }, () => RespSession.bridge(url, token, { stallMs: options.stallMs })));
    for (const r of results) {
      if (r.status === 'fulfilled') sessions.push(r.value);
      else failure ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
    }
  }
  return { sessions, failure };
}
