// Extension commands checked against the server's own key specs (COMMAND INFO) at start-up: each must name exactly
// one key, its first argument, so that the prefix check on that argument is the whole check. A hand-kept list of
// multi-key commands is outgrown by every Valkey release (LCS reached another tenant's value).
import { isIP } from 'node:net';
import { Redis } from 'iovalkey';
import type { ValkeyEndpoint } from './options.ts';

/** An extension the bridge cannot confine to one key, or a server that could not be asked. */
export class ExtensionSpecError extends Error {
  override name = 'ExtensionSpecError';
  constructor(readonly command: string, message: string) {
    super(message);
  }
}

/** Why `info` (one COMMAND INFO entry, RESP2) does not describe a command whose only key is its first argument, or null. */
export function singleKeyProblem(info: unknown): string | null {
  if (!Array.isArray(info)) return 'the server does not know it';
  const [, arity, flags, firstKey, lastKey, step, , , keySpecs] = info as [unknown, number, unknown[], number, number, number, unknown, unknown, unknown];
  if (Array.isArray(flags) && flags.some((f) => String(f) === 'movablekeys')) return 'its keys are found at run time (movablekeys)';
  if (firstKey !== 1 || lastKey !== 1 || step > 1) return `it can name keys at positions ${firstKey}..${lastKey} (step ${step}), not only its first argument`;
  if (typeof arity === 'number' && arity > 0 && arity < 2) return 'it takes no key argument';
  if (Array.isArray(keySpecs) && keySpecs.length !== 1) return `it has ${keySpecs.length} key specs, not one`;
  return null;
}

/**
 * Asks Valkey for every extension's key specs.
 * @throws ExtensionSpecError naming the first command that could name more than one key, or none the bridge can locate.
 */
export async function checkExtensionSpecs(endpoint: ValkeyEndpoint, commands: readonly string[], timeoutMs: number): Promise<void> {
  if (commands.length === 0) return;
  const conn = new Redis({
    host: endpoint.host, port: endpoint.port, username: endpoint.username, password: endpoint.password, db: endpoint.db,
    tls: endpoint.tls ? { servername: isIP(endpoint.host) ? undefined : endpoint.host, ...endpoint.tlsOptions } : undefined, lazyConnect: true, maxRetriesPerRequest: 0,
    enableOfflineQueue: false, retryStrategy: () => null, commandTimeout: timeoutMs, connectTimeout: timeoutMs,
  });
  conn.on('error', () => undefined);
  try {
    await conn.connect().catch((err: Error) => {
      throw new ExtensionSpecError(commands[0]!, `extension commands are checked against Valkey's COMMAND INFO at start-up, and ${endpoint.display} could not be reached: ${err.message}`);
    });
    const infos = (await conn.call('COMMAND', 'INFO', ...commands)) as unknown[];
    commands.forEach((command, i) => {
      const problem = singleKeyProblem(infos[i]);
      if (problem) throw new ExtensionSpecError(command, `extraCommands must not include ${command}: ${problem}; the bridge checks only the first argument against a token's prefix`);
    });
  } finally {
    conn.disconnect();
  }
}
