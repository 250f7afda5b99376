import { describe, expect, it } from 'vitest';
import { Allowlist, type CommandPlan } from '../../bridge/allowlist.ts';
import { RespErrorReply, RespSimple } from '../../shared/resp/index.ts';
import { SCRIPTS, SCRIPT_SHA } from '../../shared/valkeyaside.ts';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const args = (...parts: Array<string | Uint8Array>) => parts.map((p) => (typeof p === 'string' ? enc(p) : p));
const allow = new Allowlist(['HSET']);
const plan = (prefix: string | null, ...parts: Array<string | Uint8Array>) =>
  allow.plan(args(...parts), prefix === null ? null : enc(prefix));

function errorOf(p: CommandPlan): string {
  if (p.kind !== 'reply' || !(p.reply instanceof RespErrorReply)) throw new Error(`expected an error reply, got ${p.kind}`);
  return p.reply.message;
}

function write(p: CommandPlan): Extract<CommandPlan, { kind: 'write' }> {
  if (p.kind !== 'write') throw new Error(`expected a write, got ${p.kind}`);
  return p;
}

describe('allowlist: commands and arity', () => {
  it('answers PING itself, with PONG or the message', () => {
    expect(plan(null, 'ping')).toMatchObject({ kind: 'reply', reply: new RespSimple('PONG') });
    const echo = plan(null, 'PING', 'hello');
    expect(echo.kind === 'reply' && Buffer.from(echo.reply as Uint8Array).toString()).toBe('hello');
    expect(errorOf(plan(null, 'PING', 'a', 'b'))).toBe("ERR wrong number of arguments for 'PING'");
  });

  it('plans TRACKED.GET with a positive integer capMs only', () => {
    expect(plan(null, 'tracked.get', 'k', '1500')).toMatchObject({ kind: 'tracked-get', capMs: 1500 });
    for (const bad of ['0', '-1', '1.5', 'abc', '', '01', '99999999999999999999']) {
      expect(errorOf(plan(null, 'TRACKED.GET', 'k', bad))).toBe('ERR capMs must be a positive integer');
    }
    expect(errorOf(plan(null, 'TRACKED.GET', 'k'))).toBe("ERR wrong number of arguments for 'TRACKED.GET'");
  });

  it('passes GET, PTTL and EXISTS through as plain reads', () => {
    expect(plan(null, 'get', 'k')).toMatchObject({ kind: 'read', command: 'GET' });
    expect(plan(null, 'PTTL', 'k')).toMatchObject({ kind: 'read', command: 'PTTL' });
    expect(plan(null, 'EXISTS', 'a', 'b', 'c')).toMatchObject({ kind: 'read', command: 'EXISTS' });
    expect(errorOf(plan(null, 'GET'))).toBe("ERR wrong number of arguments for 'GET'");
    expect(errorOf(plan(null, 'get', 'a', 'b'))).toBe("ERR wrong number of arguments for 'get'");
    expect(errorOf(plan(null, 'EXISTS'))).toBe("ERR wrong number of arguments for 'EXISTS'");
  });

  it('refuses everything else by name, echoing it safely on one line', () => {
    expect(errorOf(plan(null, 'FLUSHALL'))).toBe("ERR command 'FLUSHALL' is not allowed by this bridge");
    expect(errorOf(plan(null, 'config', 'set', 'x', 'y'))).toBe("ERR command 'config' is not allowed by this bridge");
    expect(errorOf(plan(null, 'EV\r\nIL'))).toBe("ERR command 'EV??IL' is not allowed by this bridge");
    expect(errorOf(plan(null, 'x'.repeat(100)))).toBe(`ERR command '${'x'.repeat(64)}...' is not allowed by this bridge`);
    expect(plan(null, 'FLUSHALL')).toMatchObject({ refusal: 'not_allowed' });
  });

  it('labels metrics with known names only', () => {
    expect(allow.label('GET')).toBe('GET');
    expect(allow.label('HSET')).toBe('HSET');
    expect(allow.label('FLUSHALL')).toBe('OTHER');
  });
});

describe('allowlist: SET options', () => {
  it('accepts NX, GET and PX each at most once, in any order', () => {
    for (const opts of [[], ['NX'], ['GET'], ['PX', '100'], ['nx', 'get', 'px', '5'], ['PX', '5', 'GET', 'NX']]) {
      expect(plan(null, 'SET', 'k', 'v', ...opts).kind).toBe('write');
    }
  });

  it('refuses other options, repeats and bad PX values with a syntax error', () => {
    expect(errorOf(plan(null, 'SET', 'k', 'v', 'EX', '10'))).toBe("ERR syntax error: SET option 'EX' is not allowed by this bridge (only NX, GET, PX)");
    expect(errorOf(plan(null, 'SET', 'k', 'v', 'XX'))).toBe("ERR syntax error: SET option 'XX' is not allowed by this bridge (only NX, GET, PX)");
    expect(errorOf(plan(null, 'SET', 'k', 'v', 'NX', 'nx'))).toBe("ERR syntax error: SET option 'nx' given twice");
    expect(errorOf(plan(null, 'SET', 'k', 'v', 'PX'))).toBe('ERR syntax error: SET PX needs a value in ms');
    expect(errorOf(plan(null, 'SET', 'k', 'v', 'PX', '0'))).toBe('ERR syntax error: SET PX must be a positive integer');
    expect(errorOf(plan(null, 'SET', 'k'))).toBe("ERR wrong number of arguments for 'SET'");
  });

  it('knows when a SET changed nothing', () => {
    const plain = write(plan(null, 'SET', 'k', 'v'));
    expect(plain.statusReply).toBe(true);
    expect(plain.changed(new RespSimple('OK'))).toBe(true);
    const nx = write(plan(null, 'SET', 'k', 'v', 'NX'));
    expect(nx.changed(null)).toBe(false);
    expect(nx.changed(new RespSimple('OK'))).toBe(true);
    const nxGet = write(plan(null, 'SET', 'k', 'v', 'NX', 'GET'));
    expect(nxGet.statusReply).toBe(false);
    expect(nxGet.changed(null)).toBe(true);
    expect(nxGet.changed(enc('holder'))).toBe(false);
    expect(write(plan(null, 'SET', 'k', 'v', 'GET')).changed(enc('old'))).toBe(true);
  });

  it('knows when a DEL changed nothing', () => {
    const del = write(plan(null, 'DEL', 'a', 'b'));
    expect(del.keys.map((k) => Buffer.from(k).toString())).toEqual(['a', 'b']);
    expect(del.changed(0)).toBe(false);
    expect(del.changed(2)).toBe(true);
  });
});

describe('allowlist: registered scripts', () => {
  it('runs the three registered scripts by SHA (any case) or by identical body, with numkeys 1', () => {
    const lock = write(plan(null, 'EVALSHA', SCRIPT_SHA.acquireLock.toUpperCase(), '1', 'k', 'id', '100'));
    expect(lock).toMatchObject({ script: 'acquireLock', statusReply: false });
    expect(lock.args.map((a) => Buffer.from(a).toString())).toEqual(['k', 'id', '100']);
    expect(write(plan(null, 'EVAL', SCRIPTS.setkey, '1', 'k', 'id', 'v', '100'))).toMatchObject({ script: 'setkey', statusReply: true });
    expect(write(plan(null, 'evalsha', SCRIPT_SHA.delkey, '1', 'k', 'id'))).toMatchObject({ script: 'delkey' });
  });

  it('refuses unknown scripts with NOSCRIPT, even with a different arity', () => {
    expect(errorOf(plan(null, 'EVAL', 'return redis.call("FLUSHALL")', '0'))).toBe('NOSCRIPT script not registered with this bridge');
    expect(errorOf(plan(null, 'EVAL', SCRIPTS.delkey + ' ', '1', 'k', 'id'))).toBe('NOSCRIPT script not registered with this bridge');
    expect(errorOf(plan(null, 'EVALSHA', '0'.repeat(40), '1', 'k', 'id'))).toBe('NOSCRIPT script not registered with this bridge');
  });

  it('insists on numkeys 1 and the script\'s own ARGV count', () => {
    expect(errorOf(plan(null, 'EVALSHA', SCRIPT_SHA.delkey, '2', 'k', 'id'))).toBe('ERR syntax error: numkeys must be 1 for the registered scripts');
    expect(errorOf(plan(null, 'EVALSHA', SCRIPT_SHA.delkey, '1', 'k'))).toBe("ERR wrong number of arguments for 'EVALSHA'");
    expect(errorOf(plan(null, 'EVALSHA', SCRIPT_SHA.setkey, '1', 'k', 'id', 'v'))).toBe("ERR wrong number of arguments for 'EVALSHA'");
  });

  it('knows when a script changed nothing', () => {
    expect(write(plan(null, 'EVALSHA', SCRIPT_SHA.delkey, '1', 'k', 'id')).changed(0)).toBe(false);
    expect(write(plan(null, 'EVALSHA', SCRIPT_SHA.delkey, '1', 'k', 'id')).changed(1)).toBe(true);
    expect(write(plan(null, 'EVALSHA', SCRIPT_SHA.setkey, '1', 'k', 'id', 'v', '5')).changed(0)).toBe(false);
    const lock = write(plan(null, 'EVALSHA', SCRIPT_SHA.acquireLock, '1', 'k', 'id', '5'));
    expect(lock.changed(null)).toBe(true);
    expect(lock.changed(enc('valkeyid:other'))).toBe(false);
  });
});

describe('allowlist: operator extensions', () => {
  it('passes an extension through as a write whose first argument is its only key', () => {
    const hset = write(plan(null, 'hset', 'h', 'f', 'v'));
    expect(hset.command).toBe('HSET');
    expect(hset.keys.map((k) => Buffer.from(k).toString())).toEqual(['h']);
    expect(hset.changed(0)).toBe(true);
    expect(errorOf(plan(null, 'HSET'))).toBe("ERR wrong number of arguments for 'HSET'");
  });
});

describe('allowlist: token prefixes', () => {
  const NOPERM = "NOPERM key outside this token's prefix";

  it('allows keys under the prefix, compared as bytes, and refuses the rest', () => {
    expect(plan('tenant-a:', 'GET', 'tenant-a:k').kind).toBe('read');
    expect(errorOf(plan('tenant-a:', 'GET', 'tenant-b:k'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'GET', 'tenant-a'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'DEL', 'tenant-a:1', 'other'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'EXISTS', 'tenant-a:1', 'other'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'HSET', 'other', 'f', 'v'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'EVALSHA', SCRIPT_SHA.delkey, '1', 'other', 'id'))).toBe(NOPERM);
    expect(plan('tenant-a:', 'EVALSHA', SCRIPT_SHA.delkey, '1', 'tenant-a:k', 'id').kind).toBe('write');
    const binary = new Uint8Array([0xff, 0x00, 0x3a]);
    expect(allow.plan([enc('GET'), new Uint8Array([0xff, 0x00, 0x3a, 0x41])], binary).kind).toBe('read');
    expect(errorOf(allow.plan([enc('GET'), new Uint8Array([0xff, 0x01, 0x3a])], binary))).toBe(NOPERM);
  });

  it('allows valkeyid: markers only for reads, DEL and an empty SET', () => {
    const marker = 'valkeyid:0123456789abcdef01234567';
    for (const command of [['TRACKED.GET', marker, '100'], ['GET', marker], ['PTTL', marker], ['EXISTS', marker], ['DEL', marker],
      ['SET', marker, '', 'NX', 'PX', '100']]) {
      expect(plan('tenant-a:', ...command).kind, command[0]).not.toBe('reply');
    }
    expect(errorOf(plan('tenant-a:', 'SET', marker, 'value'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'HSET', marker, 'f', 'v'))).toBe(NOPERM);
    expect(errorOf(plan('tenant-a:', 'EVALSHA', SCRIPT_SHA.delkey, '1', marker, 'id'))).toBe(NOPERM);
  });

  it('reports a SET syntax error before checking the prefix; no prefix means every key', () => {
    expect(errorOf(plan('tenant-a:', 'SET', 'other', 'v', 'EX', '1'))).toMatch(/^ERR syntax error/);
    expect(plan(null, 'GET', 'anything').kind).toBe('read');
  });
});
