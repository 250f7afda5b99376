// How the bridge connects to Valkey: the iovalkey options of each tracked connection (no offline queue, no
// resend on reconnect: a command must not run untracked) and the zero-copy Buffer view its binary commands take.
import { isIP } from 'node:net';
import type { RedisOptions } from 'iovalkey';
import type { ValkeyEndpoint } from './options.ts';

export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A key's bytes as the latin1 string pending reads and the key index use (injective: one char per byte). */
export const latin1 = (bytes: Uint8Array): string => asBuffer(bytes).toString('latin1');

export function connectionOptions(endpoint: ValkeyEndpoint, name: string, extra: RedisOptions): RedisOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db,
    tls: endpoint.tls ? { servername: isIP(endpoint.host) ? undefined : endpoint.host, ...endpoint.tlsOptions } : undefined,
    connectionName: name,
    lazyConnect: true,
    // Fail in-flight commands on a disconnect instead of resending them, untracked, on the next connection.
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    ...extra,
  };
}
