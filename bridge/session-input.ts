// The input side of one session: what the client sent and the bridge has not dispatched yet, in order. Messages are
// kept as bytes and decoded lazily, a slice at a time as commands are taken, so that a message of 65536 commands is
// never all turned into objects at once; a text frame queues its error reply in its place among them.
import type { RawData } from 'ws';
import { ProtocolError } from '../shared/errors.ts';
import { CLOSE_CODES } from '../shared/protocol.ts';
import { RespDecoder } from '../shared/resp/index.ts';
import { RespErrorReply, type RespValue } from '../shared/resp/types.ts';
import type { ErrorKind } from './metrics.ts';
import { WorkQueue } from './work-queue.ts';

/** A command accepted from the client: a decoded value, or a reply the bridge already knows (a text frame). */
export type Work = { command: RespValue } | { reply: RespErrorReply; kind: ErrorKind };

/** Bytes decoded at a time from one message: 4 KiB is ~290 PINGs, so one slice is a small step of work. */
const FEED_SLICE_BYTES = 4 * 1024;
const TEXT_FRAME = 'ERR protocol: text frames are not supported; send RESP in binary frames';

interface Message {
  readonly bytes: Buffer;
  at: number;
  commands: number;
}

export class SessionInput {
  readonly #decoder: RespDecoder;
  /** Messages not yet fully decoded (or a text frame's reply), in arrival order; the socket stays paused meanwhile. */
  readonly #messages: Array<Message | Work> = [];
  /** Commands decoded from the first message and not yet taken. */
  readonly #decoded = new WorkQueue<Work>();
  /** A limit was passed: thrown once the commands decoded before it have been taken. */
  #failure: ProtocolError | null = null;

  readonly #maxCommandsPerFrame: number;

  constructor(maxFrameBytes: number, maxCommandsPerFrame: number) {
    this.#maxCommandsPerFrame = maxCommandsPerFrame;
    // Payloads as Buffers: they go to iovalkey as they are (a Uint8Array would be wrapped again per argument).
    this.#decoder = new RespDecoder({ maxBulkBytes: maxFrameBytes, maxDepth: 8, allocate: Buffer.allocUnsafeSlow });
  }

  /** Is anything waiting to be dispatched? */
  get pending(): boolean {
    return this.#decoded.length > 0 || this.#messages.length > 0 || this.#failure !== null;
  }

  /**
   * Queues a message as ws delivered it (a text frame is answered with an error reply, in its place); ws may deliver
   * one it had already read while paused, so it waits behind the others. Returns its size in bytes.
   */
  push(data: RawData, isBinary: boolean): number {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.#messages.push(isBinary ? { bytes, at: 0, commands: 0 } : { reply: new RespErrorReply(TEXT_FRAME), kind: 'protocol' });
    return bytes.length;
  }

  clear(): void {
    this.#messages.length = 0;
    this.#decoded.clear();
    this.#failure = null;
  }

  /**
   * The next command, decoding the next slice of the current message when none is decoded; undefined when nothing waits.
   * @throws ProtocolError on malformed RESP, too many commands in one message, or a command spanning two messages.
   */
  next(): Work | undefined {
    for (;;) {
      const work = this.#decoded.shift();
      if (work) return work;
      if (this.#failure) {
        const failure = this.#failure;
        this.clear();
        throw failure;
      }
      const first = this.#messages[0];
      if (!first) return undefined;
      if (!('bytes' in first)) {
        this.#messages.shift();
        return first;
      }
      this.#decodeSlice(first);
    }
  }

  #decodeSlice(input: Message): void {
    const max = this.#maxCommandsPerFrame;
    const slice = input.bytes.subarray(input.at, input.at + FEED_SLICE_BYTES);
    input.at += slice.length;
    for (const command of this.#decoder.feed(slice)) {
      if (++input.commands > max) {
        // The commands before the limit are answered first: they stay decoded, the failure comes after them.
        this.#messages.length = 0;
        this.#failure = new ProtocolError('ERR_RESP_TOO_MANY', `more than ${max} commands in one message`, CLOSE_CODES.MESSAGE_TOO_BIG);
        return;
      }
      this.#decoded.push({ command });
    }
    if (input.at >= input.bytes.length) {
      this.#messages.shift();
      if (this.#decoder.bufferedBytes > 0) {
        throw new ProtocolError('ERR_RESP_INCOMPLETE', 'a message must hold complete commands; a command never spans two messages');
      }
    }
  }
}
