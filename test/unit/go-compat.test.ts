// The Go-compatibility constants against Go valkeyaside's own text (a fixture copied from valkey-go's aside.go at the
// release the interop suite pins) and against SHA1 computed here: a wrong SHA would make every EVALSHA miss.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ACQUIRE_LOCK_SCRIPT, DELKEY_SCRIPT, PLACEHOLDER_PREFIX, SCRIPT_SHA, SCRIPTS, SETKEY_SCRIPT, isPlaceholder, newClientId } from '../../shared/valkeyaside.ts';

const GO_SOURCE = readFileSync(new URL('./fixtures/go-valkeyaside-scripts.go.txt', import.meta.url), 'utf8');

/** The backquoted script of `name = valkey.NewLuaScript(`...`)` in the Go source. */
function goScript(name: string): string {
  const match = new RegExp(`\\b${name}\\s*=\\s*valkey\\.NewLuaScript\\(\`([^\`]*)\`\\)`).exec(GO_SOURCE);
  if (match === null) throw new Error(`no script ${name} in the Go fixture`);
  return match[1]!;
}

const sha1 = (text: string) => createHash('sha1').update(text, 'utf8').digest('hex');

describe('Go valkeyaside compatibility constants', () => {
  it('has exactly Go\'s three scripts, byte for byte', () => {
    expect(DELKEY_SCRIPT).toBe(goScript('delkey'));
    expect(SETKEY_SCRIPT).toBe(goScript('setkey'));
    expect(ACQUIRE_LOCK_SCRIPT).toBe(goScript('acquireLock'));
  });

  it('has the SHA1 of each script as its EVALSHA constant', () => {
    for (const name of Object.keys(SCRIPT_SHA) as Array<keyof typeof SCRIPT_SHA>) {
      expect(SCRIPT_SHA[name], name).toBe(sha1(SCRIPTS[name]));
    }
  });

  it('makes client ids of Go\'s shape: "valkeyid:" + 24 lowercase hex chars', () => {
    expect(PLACEHOLDER_PREFIX).toBe('valkeyid:');
    const ids = new Set(Array.from({ length: 100 }, () => newClientId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^valkeyid:[0-9a-f]{24}$/);
  });

  it('recognises a placeholder by its prefix bytes, whatever follows', () => {
    expect(isPlaceholder(new Uint8Array([...new TextEncoder().encode('valkeyid:'), 0xff, 0xfe]))).toBe(true);
    expect(isPlaceholder(new TextEncoder().encode('valkeyi'))).toBe(false);
    expect(isPlaceholder(null)).toBe(false);
  });
});
