#!/usr/bin/env node
// Finds a Valkey (or Redis >= 7.0) server binary for tests and `npm start`, installing one from apt when it runs
// as root on Debian and none is on PATH. Plain ESM JavaScript so that it runs before anything is compiled.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const MIN_MAJOR = 7;
const INSTALL_HINT =
  'sudo apt-get install -y valkey-server   # or redis-server (>= 7.0); or set VALKEY_SERVER_BIN=/path/to/valkey-server';

/** @param {string} bin @returns {{ name: string, version: string, major: number } | null} */
export function serverVersion(bin) {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const m = /^(Valkey|Redis) server v=(\d+)\.(\d+)\.(\d+)/m.exec(out);
    if (!m) return null;
    return { name: m[1], version: `${m[2]}.${m[3]}.${m[4]}`, major: Number(m[2]) };
  } catch {
    return null;
  }
}

/** @param {string} name @returns {string | null} */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

/** @returns {string | null} the first usable binary, honouring VALKEY_SERVER_BIN */
function locate() {
  const named = process.env.VALKEY_SERVER_BIN;
  if (named) {
    const v = serverVersion(named);
    if (!v) throw new Error(`VALKEY_SERVER_BIN=${named} is not a runnable valkey-server or redis-server binary`);
    if (v.major < MIN_MAJOR) throw new Error(`VALKEY_SERVER_BIN=${named} is ${v.name} ${v.version}; version >= 7.0 is required`);
    return named;
  }
  for (const name of ['valkey-server', 'redis-server']) {
    const bin = onPath(name);
    const v = bin && serverVersion(bin);
    if (bin && v && v.major >= MIN_MAJOR) return bin;
  }
  return null;
}

function canInstallWithApt() {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && onPath('apt-get') !== null;
}

function aptHasCandidate(pkg) {
  const r = spawnSync('apt-cache', ['policy', pkg], { encoding: 'utf8' });
  const m = /Candidate:\s*(\S+)/.exec(r.stdout ?? '');
  return m !== null && m[1] !== '(none)';
}

function aptInstall() {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${r.status})`);
  };
  run(['update', '-qq']);
  const pkg = aptHasCandidate('valkey-server') ? 'valkey-server' : 'redis-server';
  console.error(`find-valkey-server: installing ${pkg} from apt`);
  run(['install', '-y', '-qq', '--no-install-recommends', pkg]);
}

/**
 * The path of a Valkey/Redis >= 7.0 server binary. Installs one from apt when allowed (`install: true`, root,
 * Debian-like); otherwise throws an Error whose message is the one line the user must run.
 * @param {{ install?: boolean }} [options]
 * @returns {string}
 */
export function findValkeyServer(options = {}) {
  let bin = locate();
  if (!bin && options.install && canInstallWithApt()) {
    aptInstall();
    bin = locate();
  }
  if (!bin) throw new Error(`No valkey-server or redis-server >= 7.0 found. Install one:\n  ${INSTALL_HINT}`);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const bin = findValkeyServer({ install: process.argv.includes('--ensure') });
    const v = serverVersion(bin);
    console.error(`find-valkey-server: using ${bin} (${v?.name} ${v?.version})`);
    console.log(bin);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
