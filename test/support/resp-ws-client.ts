// A small test client for the bridge's RESP-over-WebSocket protocol: connects with a token, sends commands (or raw
// frames), awaits replies in order and collects invalidation pushes. Every wait has a bounded timeout.
import WebSocket from 'ws';
import { RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { RespDecoder, RespErrorReply, RespPush, encodeCommand, type RespValue } from '../../shared/resp/index.ts';

export type CommandArg = string | Uint8Array | number;

/** A decoded invalidation push: key names (UTF-8 decoded; tests use ASCII keys) or null for "drop everything". */
export type Invalidation = string[] | null;

/** What arrived on the socket, in order. */
export type Arrival = { kind: 'reply'; value: RespValue } | { kind: 'push'; keys: Invalidation };

const DEFAULT_TIMEOUT_MS = 5_000;
const decodeText = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

class Channel<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<Waiter<T>> = [];
  #failure: Error | null = null;

  put(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(item);
    } else {
      this.#items.push(item);
    }
  }

  take(timeoutMs: number, what: string): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  get buffered(): number {
    return this.#items.length;
  }

  fail(err: Error): void {
    this.#failure = err;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
  }
}

export interface ConnectOptions {
  /** Bearer token; null sends no Authorization header. */
  token: string | null;
  /** Raw Authorization header (overrides `token`). */
  authorization?: string;
  subprotocol?: boolean;
}

export class RespWsClient {
  /** Everything received, in arrival order (for ordering assertions). */
  readonly arrivals: Arrival[] = [];
  /** Every push's keys as the exact bytes received (null for "drop everything"). */
  readonly rawPushes: Array<Uint8Array[] | null> = [];
  /** Resolves with the close code and reason once the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #replies = new Channel<RespValue>();
  readonly #pushes = new Channel<Invalidation>();
  readonly #decoder = new RespDecoder();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        const err = new Error(`socket closed (${code} ${reason.toString()})`);
        this.#replies.fail(err);
        this.#pushes.fail(err);
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) throw new Error('the bridge sent a text frame');
      for (const value of this.#decoder.feed(data)) {
        if (value instanceof RespPush) {
          const keys = pushKeys(value);
          this.rawPushes.push(value.items[1] === null ? null : (value.items[1] as Uint8Array[]));
          this.arrivals.push({ kind: 'push', keys });
          this.#pushes.put(keys);
        } else {
          this.arrivals.push({ kind: 'reply', value });
          this.#replies.put(value);
        }
      }
    });
  }

  /** Opens a session. @throws when the upgrade is refused (the message holds the HTTP status). */
  static async connect(url: string, options: ConnectOptions): Promise<RespWsClient> {
    const ws = openSocket(url, options);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out connecting to ${url}`)), DEFAULT_TIMEOUT_MS);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('error', (err) => { clearTimeout(timer); reject(err); });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused with HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
    });
    return new RespWsClient(ws);
  }

  /** Tries an upgrade that should be refused; resolves with the HTTP status and JSON body. */
  static async refusal(url: string, options: ConnectOptions): Promise<{ status: number; body: unknown }> {
    const ws = openSocket(url, options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for the refusal')), DEFAULT_TIMEOUT_MS);
      ws.once('open', () => { clearTimeout(timer); ws.terminate(); reject(new Error('the upgrade was accepted')); });
      ws.once('error', () => undefined);
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { text += chunk; });
        res.on('end', () => {
          clearTimeout(timer);
          ws.terminate();
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
      });
    });
  }

  /** The selected WebSocket subprotocol ('' when none). */
  get protocol(): string {
    return this.ws.protocol;
  }

  /** Sends one command and awaits its reply. */
  call(...args: CommandArg[]): Promise<RespValue> {
    this.sendRaw(encodeCommand(args));
    return this.nextReply(`the reply to ${String(args[0])}`);
  }

  /** Sends several commands in ONE binary message and awaits every reply, in order. */
  async pipeline(commands: CommandArg[][], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RespValue[]> {
    this.sendRaw(Buffer.concat(commands.map((c) => encodeCommand(c))));
    const out: RespValue[] = [];
    for (let i = 0; i < commands.length; i++) out.push(await this.nextReply(`reply ${i + 1} of ${commands.length}`, timeoutMs));
    return out;
  }

  /** Sends raw bytes as one binary message, or a string as a text message. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  nextReply(what = 'a reply', timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RespValue> {
    return this.#replies.take(timeoutMs, what);
  }

  /** The next invalidation push not yet taken. */
  nextPush(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Invalidation> {
    return this.#pushes.take(timeoutMs, 'an invalidation push');
  }

  /** Pushes received and not yet taken with nextPush. */
  get unreadPushes(): number {
    return this.#pushes.buffered;
  }

  /** Closes the socket and waits (bounded) for the close to complete. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2_000);
    await this.closed;
    clearTimeout(timer);
  }

  /** Waits (bounded) for the bridge to close the socket. */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`socket not closed within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }
}

function openSocket(url: string, options: ConnectOptions): WebSocket {
  const headers: Record<string, string> = {};
  const auth = options.authorization ?? (options.token === null ? undefined : `Bearer ${options.token}`);
  if (auth !== undefined) headers.authorization = auth;
  return new WebSocket(url, options.subprotocol ? [RESP_SUBPROTOCOL] : [], { headers, perMessageDeflate: false });
}

function pushKeys(push: RespPush): Invalidation {
  const [kind, keys] = push.items;
  if (!(kind instanceof Uint8Array) || decodeText(kind) !== 'invalidate') throw new Error('unexpected push kind');
  if (keys === null) return null;
  if (!Array.isArray(keys)) throw new Error('invalidate push without a key array');
  return keys.map((k) => decodeText(k as Uint8Array));
}

/** UTF-8 text of a bulk reply (or null), for assertions. */
export function text(value: RespValue): string | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) return decodeText(value);
  throw new Error(`expected a bulk string or null, got ${describeValue(value)}`);
}

export function describeValue(value: RespValue): string {
  if (value instanceof Uint8Array) return `bulk ${JSON.stringify(decodeText(value))}`;
  if (value instanceof RespErrorReply) return `error ${JSON.stringify(value.message)}`;
  return String(value);
}

/** `TRACKED.GET key capMs`, its reply unpacked. @throws when the reply is not the three-element array. */
export async function trackedGet(client: RespWsClient, key: string, capMs: number): Promise<{ value: string | null; ttlMs: number; cacheable: boolean }> {
  const reply = await client.call('TRACKED.GET', key, capMs);
  if (!Array.isArray(reply) || reply.length !== 3) throw new Error(`TRACKED.GET ${key}: unexpected reply ${describeValue(reply)}`);
  const [value, ttlMs, cacheable] = reply;
  if (typeof ttlMs !== 'number' || typeof cacheable !== 'boolean') throw new Error(`TRACKED.GET ${key}: bad ttl or flag`);
  return { value: text(value!), ttlMs, cacheable };
}

/** The message of an error reply. @throws when `value` is not an error reply. */
export function errorText(value: RespValue): string {
  if (value instanceof RespErrorReply) return value.message;
  throw new Error(`expected an error reply, got ${describeValue(value)}`);
}
