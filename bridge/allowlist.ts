// The command allowlist of docs/protocol.md: turns one client command (bulk-string arguments) into a plan the
// session can run, or into the exact error reply. Pure: no I/O, so every rule (arity, SET options, registered
// scripts, tenant prefixes and the `valkeyid:` marker exception) is unit-tested here.
import { RespErrorReply, RespSimple, type RespValue } from '../shared/resp/types.ts';
import { PLACEHOLDER_PREFIX, SCRIPTS, SCRIPT_SHA } from '../shared/valkeyaside.ts';

export type ScriptName = keyof typeof SCRIPT_SHA;

/** Why a command was refused, for metrics. */
export type RefusalKind = 'not_allowed' | 'arity' | 'syntax' | 'noperm' | 'noscript';

export type CommandPlan =
  /** Answered by the bridge itself (PING, or a refusal when `refusal` is set). */
  | { kind: 'reply'; command: string; reply: RespValue; refusal?: RefusalKind }
  | { kind: 'tracked-get'; command: 'TRACKED.GET'; key: Uint8Array; capMs: number }
  /** The `setkey` compare-and-set and a tracked read of the key, in one transaction (bridge/tracked-setkey.ts). */
  | { kind: 'tracked-setkey'; command: 'TRACKED.SETKEY'; key: Uint8Array; id: Uint8Array; value: Uint8Array; ttlMs: Uint8Array; capMs: number }
  /** Passed through; the reply is never cacheable. `args[0]` is the Valkey command name. */
  | { kind: 'read'; command: string; args: Uint8Array[] }
  /**
   * Passed through (or, with `script`, run as EVALSHA of that registered script with `args` = key + ARGV);
   * on success the readers of `keys` are invalidated unless `changed(reply)` is false.
   * `statusReply`: a string reply is a status (`+OK`), not a bulk string.
   */
  | {
      kind: 'write';
      command: string;
      args: Uint8Array[];
      keys: Uint8Array[];
      script?: ScriptName;
      statusReply: boolean;
      changed: (reply: RespValue) => boolean;
      /** An operator extension: sent raw, replies passed through. */
      extension?: true;
    };

/** ARGV count each registered script expects (Go valkeyaside sends exactly these). */
const SCRIPT_ARGC: Record<ScriptName, number> = { delkey: 1, setkey: 3, acquireLock: 2 };
const SHA_TO_SCRIPT = new Map<string, ScriptName>(
  (Object.keys(SCRIPT_SHA) as ScriptName[]).map((name) => [SCRIPT_SHA[name], name]),
);
const SCRIPT_BYTES = (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [name, Buffer.from(SCRIPTS[name], 'utf8')] as const);
const MARKER = Buffer.from(PLACEHOLDER_PREFIX, 'latin1');

const err = (message: string, refusal: RefusalKind, command: string): CommandPlan => ({
  kind: 'reply',
  command,
  reply: new RespErrorReply(message),
  refusal,
});

/** A client-supplied name made safe to echo inside a one-line error reply. */
export function printable(bytes: Uint8Array, max = 64): string {
  let out = '';
  for (let i = 0; i < bytes.length && i < max; i++) {
    const b = bytes[i]!;
    out += b >= 0x20 && b <= 0x7e && b !== 0x27 ? String.fromCharCode(b) : '?';
  }
  return bytes.length > max ? out + '...' : out;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Module functions, not closures made per plan() call: the name is rendered only when the reply is a refusal. */
function arity(args: Uint8Array[], command: string): CommandPlan {
  return err(`ERR wrong number of arguments for '${printable(args[0]!)}'`, 'arity', command);
}

/** Upper-cases a-z only (bytes past ASCII stay themselves: no name or option has them); a loop, not a Buffer view. */
function asciiUpper(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
  }
  return out;
}

function positiveInt(bytes: Uint8Array): number | null {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!/^[1-9][0-9]{0,15}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

const equalsAscii = (bytes: Uint8Array, text: string): boolean =>
  bytes.length === text.length && asciiUpper(bytes) === text;

/** Compiled allowlist: the built-in commands plus the operator's extensions. */
export class Allowlist {
  readonly #extensions: ReadonlySet<string>;

  readonly #limits: { maxKeyBytes: number; maxMarkerTtlMs: number };

  /**
   * @param extraCommands upper-case extension names, already validated by resolveBridgeOptions.
   * @param limits longest key in bytes; largest PX of a `valkeyid:` marker SET, in ms.
   */
  constructor(
    extraCommands: readonly string[] = [],
    limits: { maxKeyBytes: number; maxMarkerTtlMs: number } = { maxKeyBytes: 16 * 1024, maxMarkerTtlMs: 600_000 },
  ) {
    this.#limits = limits;
    this.#extensions = new Set(extraCommands);
  }

  /** The metric label for a command name: the name when known, else `OTHER` (bounded cardinality). */
  label(name: string): string {
    return KNOWN.has(name) || this.#extensions.has(name) ? name : 'OTHER';
  }

  /**
   * Plans one command. `args` holds at least the name. `prefix` is the token's key prefix (bytes) or null.
   * Never throws on client input.
   */
  plan(args: Uint8Array[], prefix: Uint8Array | null): CommandPlan {
    const command = asciiUpper(args[0]!);
    const n = args.length;
    switch (command) {
      case 'PING':
        if (n > 2) return arity(args, command);
        return { kind: 'reply', command, reply: n === 2 ? args[1]! : new RespSimple('PONG') };
      case 'TRACKED.GET': {
        if (n !== 3) return arity(args, command);
        const refused = this.#keyCheck([args[1]!], true, prefix, command);
        if (refused) return refused;
        const capMs = positiveInt(args[2]!);
        if (capMs === null) return err('ERR capMs must be a positive integer', 'syntax', command);
        return { kind: 'tracked-get', command: 'TRACKED.GET', key: args[1]!, capMs };
      }
      case 'TRACKED.SETKEY': {
        if (n !== 6) return arity(args, command);
        const refused = this.#keyCheck([args[1]!], false, prefix, command);
        if (refused) return refused;
        if (positiveInt(args[4]!) === null) return err('ERR ttlMs must be a positive integer', 'syntax', command);
        const capMs = positiveInt(args[5]!);
        if (capMs === null) return err('ERR capMs must be a positive integer', 'syntax', command);
        return { kind: 'tracked-setkey', command: 'TRACKED.SETKEY', key: args[1]!, id: args[2]!, value: args[3]!, ttlMs: args[4]!, capMs };
      }
      case 'GET':
      case 'PTTL':
        if (n !== 2) return arity(args, command);
        return this.#keyCheck([args[1]!], true, prefix, command) ?? { kind: 'read', command, args };
      case 'EXISTS':
        if (n < 2) return arity(args, command);
        return this.#keyCheck(args.slice(1), true, prefix, command) ?? { kind: 'read', command, args };
      case 'DEL':
        if (n < 2) return arity(args, command);
        return this.#keyCheck(args.slice(1), true, prefix, command) ?? {
          kind: 'write', command, args, keys: args.slice(1), statusReply: false, changed: (r) => r !== 0,
        };
      case 'SET':
        return this.#planSet(args, command, prefix);
      case 'EVALSHA':
      case 'EVAL':
        return this.#planScript(args, command, prefix);
      default:
        if (!this.#extensions.has(command)) {
          return err(`ERR command '${printable(args[0]!)}' is not allowed by this bridge`, 'not_allowed', command);
        }
        if (n < 2) return arity(args, command);
        return this.#keyCheck([args[1]!], false, prefix, command) ?? {
          kind: 'write', command, args, keys: [args[1]!], statusReply: false, changed: () => true, extension: true,
        };
    }
  }

  /** A refusal when a key is too long or (with a prefix) outside it; a marker key passes when `markerOk`. */
  #keyCheck(keys: Uint8Array[], markerOk: boolean, prefix: Uint8Array | null, command: string): CommandPlan | null {
    // Long keys cost the bridge (key index) and Valkey (its tracking table keeps them after the session is gone).
    for (const key of keys) {
      if (key.length > this.#limits.maxKeyBytes) {
        return err(`ERR key longer than this bridge's limit of ${this.#limits.maxKeyBytes} bytes`, 'syntax', command);
      }
    }
    if (prefix === null) return null;
    for (const key of keys) {
      if (startsWith(key, prefix)) continue;
      if (markerOk && startsWith(key, MARKER)) continue;
      return err("NOPERM key outside this token's prefix", 'noperm', command);
    }
    return null;
  }

  #planSet(
    args: Uint8Array[],
    command: string,
    prefix: Uint8Array | null,
  ): CommandPlan {
    if (args.length < 3) return arity(args, command);
    let nx = false;
    let get = false;
    let px = false;
    let pxMs = 0;
    for (let i = 3; i < args.length; i++) {
      const option = asciiUpper(args[i]!);
      const shown = printable(args[i]!);
      const twice = () => err(`ERR syntax error: SET option '${shown}' given twice`, 'syntax', command);
      if (option === 'NX') {
        if (nx) return twice();
        nx = true;
      } else if (option === 'GET') {
        if (get) return twice();
        get = true;
      } else if (option === 'PX') {
        if (px) return twice();
        px = true;
        i++;
        if (i >= args.length) return err('ERR syntax error: SET PX needs a value in ms', 'syntax', command);
        pxMs = positiveInt(args[i]!) ?? 0;
        if (pxMs === 0) return err('ERR syntax error: SET PX must be a positive integer', 'syntax', command);
      } else {
        return err(`ERR syntax error: SET option '${shown}' is not allowed by this bridge (only NX, GET, PX)`, 'syntax', command);
      }
    }
    // Markers (`valkeyid:...`) may only be set to the empty value.
    const refused = this.#keyCheck([args[1]!], args[2]!.length === 0, prefix, command);
    if (refused) return refused;
    // A marker says its holder is alive: without a bounded PX, a dead holder could be kept looking alive forever.
    if (startsWith(args[1]!, MARKER) && (!px || pxMs > this.#limits.maxMarkerTtlMs)) {
      return err(`ERR syntax error: a marker SET needs PX of at most ${this.#limits.maxMarkerTtlMs} ms`, 'syntax', command);
    }
    // NX without GET: nil means "not set". NX with GET: a value means "key existed, not set".
    const changed = nx ? (get ? (r: RespValue) => r === null || r instanceof RespErrorReply : (r: RespValue) => r !== null) : () => true;
    return { kind: 'write', command, args, keys: [args[1]!], statusReply: !get, changed };
  }

  #planScript(
    args: Uint8Array[],
    command: string,
    prefix: Uint8Array | null,
  ): CommandPlan {
    if (args.length < 2) return arity(args, command);
    let script: ScriptName | undefined;
    if (command === 'EVALSHA') {
      script = SHA_TO_SCRIPT.get(asciiUpper(args[1]!).toLowerCase());
    } else {
      const body = args[1]!;
      script = SCRIPT_BYTES.find(([, bytes]) => Buffer.compare(bytes, body) === 0)?.[0];
    }
    if (!script) return err('NOSCRIPT script not registered with this bridge', 'noscript', command);
    if (args.length < 4) return arity(args, command);
    if (!equalsAscii(args[2]!, '1')) return err('ERR syntax error: numkeys must be 1 for the registered scripts', 'syntax', command);
    if (args.length !== 4 + SCRIPT_ARGC[script]) return arity(args, command);
    const refused = this.#keyCheck([args[3]!], false, prefix, command);
    if (refused) return refused;
    // delkey/setkey return 0 when the placeholder was not ours; acquireLock returns the holder when not acquired.
    const changed = script === 'acquireLock'
      ? (r: RespValue) => r === null || r instanceof RespErrorReply
      : (r: RespValue) => r !== 0;
    return {
      kind: 'write', command, args: args.slice(3), keys: [args[3]!], script, statusReply: script === 'setkey', changed,
    };
  }
}

const KNOWN = new Set(['PING', 'TRACKED.GET', 'TRACKED.SETKEY', 'GET', 'PTTL', 'EXISTS', 'SET', 'DEL', 'EVALSHA', 'EVAL']);
