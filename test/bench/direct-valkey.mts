// What users would build instead of the library, for the benchmarks' "DIY" rows: a Durable Object that talks to
// Valkey itself over `cloudflare:sockets` (TCP, the project's RESP codec, no bridge), with the loader in the object.
// `naive` keeps a local copy with no invalidation at all (so the bench shows what coherence costs, not a safe design).
import { connect } from 'cloudflare:sockets';
import { DurableObject } from 'cloudflare:workers';
import { RespDecoder, RespErrorReply, encodeCommand } from '../../shared/resp/index.ts';
import type { RespValue } from '../../shared/resp/index.ts';

interface DirectEnv {
  VALKEY_HOST?: string;
  VALKEY_PORT?: string;
}

interface Waiting {
  resolve(value: RespValue): void;
  reject(error: unknown): void;
}

export class DirectObject extends DurableObject<DirectEnv> {
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  readonly #waiting: Waiting[] = [];
  readonly #local = new Map<string, string>();

  /** One get: the naive local copy, else GET; on a miss with `load`, the loader here and SET PX. Answers the outcome. */
  async get(key: string, ttlMs: number, naive: boolean, load: boolean, loaderMs = 0): Promise<string> {
    if (naive && this.#local.has(key)) return 'hit';
    const got = await this.#call(['GET', key]);
    if (got !== null) {
      if (naive) this.#local.set(key, new TextDecoder().decode(got as Uint8Array));
      return 'server-hit';
    }
    if (!load) return 'miss';
    if (loaderMs > 0) await new Promise((resolve) => setTimeout(resolve, loaderMs));
    const value = `loaded:${key}`;
    await this.#call(['SET', key, value, 'PX', ttlMs]);
    if (naive) this.#local.set(key, value);
    return 'loaded';
  }

  #call(args: Array<string | number>): Promise<RespValue> {
    const writer = this.#writer ?? this.#open();
    return new Promise<RespValue>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      writer.write(encodeCommand(args)).catch(reject);
    });
  }

  #open(): WritableStreamDefaultWriter<Uint8Array> {
    const socket = connect({ hostname: this.env.VALKEY_HOST ?? '127.0.0.1', port: Number(this.env.VALKEY_PORT) });
    const writer = socket.writable.getWriter();
    this.#writer = writer;
    const decoder = new RespDecoder();
    void (async () => {
      const reader = socket.readable.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) throw new Error('valkey closed the connection');
          for (const reply of decoder.feed(value)) {
            const waiting = this.#waiting.shift();
            if (reply instanceof RespErrorReply) waiting?.reject(new Error(reply.message));
            else waiting?.resolve(reply);
          }
        }
      } catch (error) {
        this.#writer = null;
        for (const waiting of this.#waiting.splice(0)) waiting.reject(error);
      }
    })();
    return writer;
  }
}
