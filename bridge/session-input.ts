// The input side of one session: the client messages waiting to be decoded and their lazy decoding, a slice at a
// time as the session's budget frees up, so that a message of 65536 commands is never all turned into objects at once.
import { ProtocolError } from '../shared/errors.ts';
import { CLOSE_CODES } from '../shared/protocol.ts';
import { RespDecoder } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/types.ts';

/** Bytes decoded at a time from one message, and only when the session needs more commands (see decodeSlice). */
const FEED_SLICE_BYTES = 16 * 1024;

export class SessionInput {
  readonly #decoder: RespDecoder;
  /** The message being decoded (a slice at a time) and how far; the socket stays paused until it is consumed. */
  readonly #messages: Array<{ bytes: Buffer; at: number; commands: number }> = [];

  readonly #maxCommandsPerFrame: number;

  constructor(maxFrameBytes: number, maxCommandsPerFrame: number) {
    this.#maxCommandsPerFrame = maxCommandsPerFrame;
    this.#decoder = new RespDecoder({ maxBulkBytes: maxFrameBytes, maxDepth: 8 });
  }

  /** Messages not yet fully decoded. */
  get length(): number {
    return this.#messages.length;
  }

  /** Queues a binary message; ws may deliver one it had already read while paused, so it waits behind the others. */
  push(bytes: Buffer): void {
    this.#messages.push({ bytes, at: 0, commands: 0 });
  }

  clear(): void {
    this.#messages.length = 0;
  }

  /**
   * Decodes the next slice of the current message, handing each command to `accept`.
   * @throws ProtocolError on malformed RESP, too many commands in one message, or a command spanning two messages.
   */
  decodeSlice(accept: (command: RespValue) => void): void {
    const input = this.#messages[0]!;
    const max = this.#maxCommandsPerFrame;
    const slice = input.bytes.subarray(input.at, input.at + FEED_SLICE_BYTES);
    input.at += slice.length;
    for (const command of this.#decoder.feed(slice)) {
      accept(command);
      if (++input.commands > max) {
        throw new ProtocolError('ERR_RESP_TOO_MANY', `more than ${max} commands in one message`, CLOSE_CODES.MESSAGE_TOO_BIG);
      }
    }
    if (input.at >= input.bytes.length) {
      this.#messages.shift();
      if (this.#decoder.bufferedBytes > 0) {
        throw new ProtocolError('ERR_RESP_INCOMPLETE', 'a message must hold complete commands; a command never spans two messages');
      }
    }
  }
}
