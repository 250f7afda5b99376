import { describe, expect, it } from 'vitest';
import { ConnectionError, ProtocolError, ReplyError, TimeoutError, ValkeyasideError } from '../../shared/errors.ts';
import { SerializationError, fromWireError, toWireError } from '../../worker/errors.ts';

const roundTrip = (error: unknown) => fromWireError(structuredClone(toWireError(error)));

describe('worker errors across RPC', () => {
  it('keeps the class, code and message of every library error', () => {
    // A late value stays in the caller, where the loader ran: it never crosses RPC.
    const timeout = roundTrip(new TimeoutError('get("k") timed out after 5 ms', { value: 'late' }));
    expect(timeout).toBeInstanceOf(TimeoutError);
    expect(timeout).toMatchObject({ code: 'ERR_TIMEOUT', message: 'get("k") timed out after 5 ms', value: undefined });

    const reply = roundTrip(new ReplyError('NOPERM key outside this token\'s prefix'));
    expect(reply).toBeInstanceOf(ReplyError);
    expect(reply).toMatchObject({ code: 'ERR_REPLY', prefix: 'NOPERM', message: 'NOPERM key outside this token\'s prefix' });

    const connection = roundTrip(new ConnectionError('the bridge closed the connection (1001 bye)'));
    expect(connection).toBeInstanceOf(ConnectionError);
    expect(connection).toMatchObject({ code: 'ERR_CONNECTION', message: 'the bridge closed the connection (1001 bye)' });

    const tryAgain = new ReplyError('TRYAGAIN valkey is unavailable');
    const unavailable = roundTrip(new ConnectionError('the bridge cannot reach Valkey now', { cause: tryAgain, code: 'ERR_UNAVAILABLE' }));
    expect(unavailable).toBeInstanceOf(ConnectionError);
    expect(unavailable).toMatchObject({ code: 'ERR_UNAVAILABLE', message: 'the bridge cannot reach Valkey now' });
    expect(unavailable.cause).toBeInstanceOf(ReplyError);
    expect(unavailable.cause).toMatchObject({ prefix: 'TRYAGAIN', message: 'TRYAGAIN valkey is unavailable' });

    const protocol = roundTrip(new ProtocolError('ERR_BRIDGE_REPLY', 'unexpected reply', 1002));
    expect(protocol).toBeInstanceOf(ProtocolError);
    expect(protocol).toMatchObject({ code: 'ERR_BRIDGE_REPLY', closeCode: 1002 });

    const overloaded = roundTrip(new ValkeyasideError('ERR_OVERLOADED', 'too many gets'));
    expect(overloaded).toBeInstanceOf(ValkeyasideError);
    expect(overloaded).toMatchObject({ name: 'ValkeyasideError', code: 'ERR_OVERLOADED', message: 'too many gets' });
  });

  it('turns anything else into ERR_INTERNAL, naming the original', () => {
    expect(roundTrip(new RangeError('boom'))).toMatchObject({ code: 'ERR_INTERNAL', message: 'coordinator failed: RangeError: boom' });
    expect(roundTrip('text')).toMatchObject({ code: 'ERR_INTERNAL', message: 'coordinator failed: text' });
  });

  it('gives SerializationError a stable code, the key and the cause', () => {
    const cause = new SyntaxError('Unexpected token');
    const error = new SerializationError('ERR_DESERIALIZE', 'user:1', 'cannot parse', { cause });
    expect(error).toBeInstanceOf(ValkeyasideError);
    expect(error).toMatchObject({ name: 'SerializationError', code: 'ERR_DESERIALIZE', key: 'user:1', cause });
  });
});
