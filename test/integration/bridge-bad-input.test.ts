// Nothing a client sends may hurt the bridge: malformed RESP closes 1002 after an error reply, an oversize frame
// closes 1009, and argument-level mistakes get error replies on a session that stays open. After each case
// another session must still be served.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { errorText, RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const MAX_FRAME_BYTES = 4096;
let server: ValkeyServer;
let bridge: Bridge;
let bystander: RespWsClient;
const clients: RespWsClient[] = [];

async function connect(): Promise<RespWsClient> {
  const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, { maxFrameBytes: MAX_FRAME_BYTES });
  bystander = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  // Whatever the last case sent, the bridge still serves other sessions.
  expect(text(await bystander.call('PING', 'still here'))).toBe('still here');
});

afterAll(async () => {
  await bystander?.close();
  await bridge?.close();
  await server?.stop();
});

describe('bridge: malformed input closes the session', () => {
  it('answers malformed RESP with an error reply, then closes with 1002', async () => {
    const client = await connect();
    client.sendRaw(Buffer.from('*1\r\n$x\r\nPING\r\n'));
    expect(errorText(await client.nextReply())).toMatch(/^ERR protocol: /);
    expect(await client.waitClosed()).toEqual({ code: 1002, reason: 'malformed RESP' });
  });

  it('answers an unknown type byte (an inline command) the same way', async () => {
    const client = await connect();
    client.sendRaw(Buffer.from('PING\r\n'));
    expect(errorText(await client.nextReply())).toMatch(/^ERR protocol: unknown RESP type byte/);
    expect((await client.waitClosed()).code).toBe(1002);
  });

  it('closes with 1002 when a command spans two messages', async () => {
    const client = await connect();
    client.sendRaw(Buffer.from('*1\r\n$4\r\nPI'));
    expect(errorText(await client.nextReply())).toBe(
      'ERR protocol: a message must hold complete commands; a command never spans two messages',
    );
    expect((await client.waitClosed()).code).toBe(1002);
  });

  it('closes with 1009 on a frame over maxFrameBytes', async () => {
    const client = await connect();
    client.sendRaw(Buffer.alloc(MAX_FRAME_BYTES + 1, 0x2a));
    expect((await client.waitClosed()).code).toBe(1009);
  });

  it('answers replies already owed before the error reply', async () => {
    const client = await connect();
    client.sendRaw(Buffer.from('*1\r\n$4\r\nPING\r\n'));
    expect(await client.nextReply()).toEqual(new RespSimple('PONG'));
    client.sendRaw(Buffer.from('*1\r\n:oops\r\n'));
    expect(errorText(await client.nextReply())).toMatch(/^ERR protocol: /);
    expect((await client.waitClosed()).code).toBe(1002);
  });
});

describe('bridge: argument mistakes keep the session open', () => {
  it('answers a text frame with an error reply', async () => {
    const client = await connect();
    client.sendRaw('*1\r\n$4\r\nPING\r\n');
    expect(errorText(await client.nextReply())).toBe('ERR protocol: text frames are not supported; send RESP in binary frames');
    expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
  });

  it('answers an empty command, a non-array and a non-string argument with error replies', async () => {
    const client = await connect();
    client.sendRaw(Buffer.from('*0\r\n'));
    expect(errorText(await client.nextReply())).toBe('ERR protocol: empty command');
    client.sendRaw(Buffer.from('$4\r\nPING\r\n'));
    expect(errorText(await client.nextReply())).toBe('ERR protocol: commands must be RESP arrays of bulk strings');
    client.sendRaw(Buffer.from('*2\r\n$3\r\nGET\r\n:1\r\n'));
    expect(errorText(await client.nextReply())).toBe('ERR protocol: command arguments must be bulk strings');
    client.sendRaw(Buffer.from('*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n'));
    expect(errorText(await client.nextReply())).toBe('ERR protocol: command arguments must be bulk strings');
    expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
  });

  it('answers wrong arity and unknown commands with error replies', async () => {
    const client = await connect();
    const replies = await client.pipeline([['GET'], ['TRACKED.GET', 'k'], ['SET', 'k'], ['NOPE'], ['PING']]);
    expect(replies.slice(0, 4).map(errorText)).toEqual([
      "ERR wrong number of arguments for 'GET'",
      "ERR wrong number of arguments for 'TRACKED.GET'",
      "ERR wrong number of arguments for 'SET'",
      "ERR command 'NOPE' is not allowed by this bridge",
    ]);
    expect(replies[4]).toEqual(new RespSimple('PONG'));
  });
});
