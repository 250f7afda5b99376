import { Redis } from 'iovalkey';
import { describe, expect, it } from 'vitest';
import { startValkeyServer } from '../support/valkey-server.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test harness: real server on a free port', () => {
  it('starts a server that answers PING/SET/GET and leaves no process behind', async () => {
    const server = await startValkeyServer();
    const pid = server.pid!;
    expect(server.port).not.toBe(6379);
    const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      expect(await client.set('harness:k', 'v\r\n\u0000')).toBe('OK');
      expect(await client.get('harness:k')).toBe('v\r\n\u0000');
      expect(await client.config('GET', 'save')).toEqual(['save', '']);
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(alive(pid)).toBe(false);
    await server.stop(); // idempotent
  });

  it('restarts on the same port after a kill', async () => {
    const server = await startValkeyServer();
    try {
      const first = server.pid!;
      await server.kill();
      expect(alive(first)).toBe(false);
      await server.start();
      expect(server.pid).not.toBe(first);
      const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      client.disconnect();
    } finally {
      await server.stop();
    }
  });
});
