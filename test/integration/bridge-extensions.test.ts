// Extension commands: checked against the server's COMMAND INFO at start-up (a command that can name a second key,
// like LCS, is refused by name), sent raw and answered with Valkey's reply as it is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionSpecError } from '../../bridge/extension-specs.ts';
import { startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;

beforeAll(async () => {
  server = await startValkeyServer();
});

afterAll(async () => {
  await server?.stop();
});

describe('bridge: extension commands', () => {
  it('refuses to start with LCS, naming it, from the server key specs', async () => {
    const start = startReadyBridge(server.url, { extraCommands: ['HSET', 'LCS'] });
    await expect(start).rejects.toThrow(ExtensionSpecError);
    await expect(start).rejects.toThrow(/^extraCommands must not include LCS: it can name keys at positions 1\.\.2/);
  });

  it('refuses a command the server does not know', async () => {
    await expect(startReadyBridge(server.url, { extraCommands: ['NOSUCHCMD'] }))
      .rejects.toThrow('extraCommands must not include NOSUCHCMD: the server does not know it; the bridge checks only the first argument against a token\'s prefix');
  });

  it('sends HSET raw and passes HGETALL through', async () => {
    const bridge = await startReadyBridge(server.url, { extraCommands: ['HSET', 'HGETALL'], tokens: [{ token: TEST_TOKEN }] });
    try {
      const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
      expect(await client.call('HSET', 'ext:h', 'ab', 'cd')).toBe(1);
      const all = (await client.call('HGETALL', 'ext:h')) as Uint8Array[];
      expect(all.map((b) => text(b))).toEqual(['ab', 'cd']);
      await client.close();
    } finally {
      await bridge.close();
    }
  });
});
