// Frames for fuzzing the bridge's RESP-over-WebSocket input: random bytes, valid commands, valid prefixes cut
// short, broken and huge declared lengths, deep nesting, every RESP3 type where a command belongs, and byte-level
// mutations of valid pipelines. Deterministic for a seed; each frame stays under a given size.
import { encodeCommand } from '../../shared/resp/index.ts';

const COMMANDS = ['PING', 'GET', 'SET', 'DEL', 'EXISTS', 'PTTL', 'TRACKED.GET', 'EVALSHA', 'EVAL', 'FLUSHALL', 'CONFIG',
  'MULTI', 'SUBSCRIBE', 'CLIENT', 'SELECT', 'KEYS', 'HELLO', 'MONITOR', 'DEBUG', 'SHUTDOWN', 'SCRIPT'];
const RESP3_ATOMS = ['+OK\r\n', '-ERR x\r\n', ':12\r\n', '_\r\n', '#t\r\n', ',1.5\r\n', '(123456789012345678901234567890\r\n',
  '=7\r\ntxt:abc\r\n', '!3\r\nerr\r\n', '%1\r\n+a\r\n+b\r\n', '~1\r\n+a\r\n', '|1\r\n+a\r\n+b\r\n', '>1\r\n+a\r\n'];
const BROKEN = ['$5\r\nab\r\n', '$-5\r\n', '$abc\r\n', '*-3\r\n', '$99999999999999999999\r\n', '*1\r\n$1\r\nxx\r\n',
  '$2147483648\r\n', '*2147483648\r\n', '$1\r\nx\n', '*1\r$4\r\nPING\r\n', ':\r\n', '#x\r\n', ',abc\r\n', '*1\r\n\r\n',
  '$0\r\n\r\n\r\n', '*1\r\n$4\r\nPING', '*\r\n', '$\r\n', '*01\r\n$4\r\nPING\r\n', '* 1\r\n$4\r\nPING\r\n'];

export class RespFuzzer {
  constructor(private readonly random: () => number, private readonly keyPrefix: string, private readonly maxFrameBytes: number) {}

  #int(n: number): number {
    return Math.floor(this.random() * n);
  }

  #pick<T>(list: readonly T[]): T {
    return list[this.#int(list.length)]!;
  }

  #arg(): string | Uint8Array {
    switch (this.#int(5)) {
      case 0: return `${this.keyPrefix}${this.#int(20)}`;
      case 1: return String(this.#int(100_000) - 50);
      case 2: return this.#bytes(this.#int(40));
      case 3: return 'valkeyid:' + this.#int(1e9).toString(16);
      default: return this.#pick(['NX', 'GET', 'PX', '1', '0', '', 'EX', '-1']);
    }
  }

  #bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#int(256);
    return out;
  }

  /** A command that parses: an allowed or refused name with random arguments. */
  validCommand(): Uint8Array {
    const args: Array<string | Uint8Array> = [this.random() < 0.3 ? this.#pick(COMMANDS).toLowerCase() : this.#pick(COMMANDS)];
    for (let i = this.#int(6); i > 0; i--) args.push(this.#arg());
    return encodeCommand(args);
  }

  #pipeline(n: number): Uint8Array {
    return Buffer.concat(Array.from({ length: n }, () => this.validCommand()));
  }

  /** One frame of one of the shapes above; at most maxFrameBytes (some shapes aim just past it). */
  frame(): { kind: string; bytes: Uint8Array } {
    const kind = this.#pick(['random', 'valid', 'prefix', 'broken', 'nested', 'huge', 'resp3', 'mutated', 'oversize', 'many']);
    let bytes: Uint8Array;
    switch (kind) {
      case 'random': bytes = this.#bytes(1 + this.#int(300)); break;
      case 'valid': bytes = this.#pipeline(1 + this.#int(8)); break;
      case 'prefix': {
        const whole = this.#pipeline(1 + this.#int(4));
        bytes = whole.subarray(0, Math.max(1, this.#int(whole.length)));
        break;
      }
      case 'broken': bytes = Buffer.concat([this.#pipeline(this.#int(3)), Buffer.from(this.#pick(BROKEN))]); break;
      case 'nested': {
        const depth = 2 + this.#int(this.random() < 0.5 ? 12 : 5_000);
        bytes = Buffer.from('*1\r\n'.repeat(depth) + '$4\r\nPING\r\n');
        break;
      }
      case 'huge': {
        const size = this.#pick([this.maxFrameBytes, this.maxFrameBytes * 2, 2 ** 31 - 1, 2 ** 53, 1e15]);
        bytes = Buffer.from(this.#pick([`$${size}\r\n`, `*${size}\r\n`, `*1\r\n$${size}\r\nab`, `*2\r\n$3\r\nGET\r\n$${size}\r\n`]));
        break;
      }
      case 'resp3': bytes = Buffer.from(this.random() < 0.5 ? this.#pick(RESP3_ATOMS) : `*2\r\n$3\r\nGET\r\n${this.#pick(RESP3_ATOMS)}`); break;
      case 'mutated': {
        const out = Buffer.from(this.#pipeline(1 + this.#int(4)));
        for (let i = 1 + this.#int(4); i > 0; i--) {
          const at = this.#int(out.length);
          out[at] = this.#pick([0x0d, 0x0a, 0x2a, 0x24, 0x2d, 0x30, 0x39, this.#int(256)]);
        }
        bytes = out;
        break;
      }
      case 'oversize': bytes = new Uint8Array(this.maxFrameBytes + 1 + this.#int(64)).fill(0x2a); break;
      default: {
        // Many small valid commands in one frame: a pipeline close to the frame limit.
        const one = encodeCommand(['PING', 'x'.repeat(this.#int(8))]);
        bytes = Buffer.concat(Array.from({ length: Math.floor((this.maxFrameBytes * 0.9) / one.length) }, () => one));
      }
    }
    return { kind, bytes };
  }
}
