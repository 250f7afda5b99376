#!/usr/bin/env node
// Pinned Debian server packages (redis-6.0, redis-7.0, valkey-8.0) fetched from deb.debian.org's pool, checked
// against pinned SHA-256s and unpacked with their libraries into test/.tmp/servers/, so tests can start a server
// version the machine does not have installed. Plain ESM JavaScript so scripts can use it before anything compiles.
//
//   ensureServerPackage('redis-6.0')      async → { name, version, bin, realBin, env, dir }
//   ensureServerPackageSync('redis-6.0')  the same, blocking (runs this file as a child process)
//   node test/support/server-packages.mjs redis-6.0 [...]   prints each result as one JSON line
//
// `bin` is a wrapper script that sets LD_LIBRARY_PATH and execs the real binary, so it runs as is (e.g. from Go
// or as VALKEY_SERVER_BIN); `realBin` + `env` is the same thing without the wrapper.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const POOL_MIRRORS = ['http://deb.debian.org/debian/', 'http://deb.debian.org/debian-security/'];
const FETCH_TIMEOUT_MS = 120_000;
const LIB_DIRS = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu'];

/** @param {string} path pool path as in the suite's Packages index @param {string} sha256 */
const deb = (path, sha256) => ({ path, sha256 });

// Exact versions from the suites' Packages indexes (`apt-cache show <pkg>=<version>` gives Filename and SHA256).
// Libraries come from the server's own release, so a fresh Debian 12 (no libssl1.1, liblua, jemalloc, lzf,
// libatomic, maybe no libssl3) runs every server from its private folder. Debian links Redis 6.0 against the
// system Lua 5.1 and loads cjson/bit from lua-cjson/lua-bitop; Redis 7.0 and Valkey embed their Lua.
const BOOKWORM_LIBS = [
  deb('pool/main/j/jemalloc/libjemalloc2_5.3.0-1_amd64.deb', 'a4117c23c5c8acf6c9678a6cb086f000b79476369da7efe8a78a70826956ad3d'),
  deb('pool/main/libl/liblzf/liblzf1_3.6-3_amd64.deb', '9854b0866201b63e04f1e446f45f01ef4a6f72c61f2250b75f944f6046cc7e8c'),
  deb('pool/main/g/gcc-12/libatomic1_12.2.0-14+deb12u1_amd64.deb', 'fbd4e154a6b444229ea002cc209df099209c0adc09102e5fd21239a3d2b55e2d'),
  deb('pool/main/o/openssl/libssl3_3.0.20-1~deb12u2_amd64.deb', '89be24b41bff568ee6e7caf5680a3d808e80315ed92e407056ce0fa7a5bda025'),
];

export const SERVER_PACKAGES = Object.freeze({
  'redis-6.0': {
    /** what `--version` and INFO's redis_version report */
    version: '6.0.16',
    product: 'Redis',
    debianVersion: '5:6.0.16-1+deb11u2 (bullseye)',
    binary: 'usr/bin/redis-server',
    debs: [
      deb('pool/main/r/redis/redis-server_6.0.16-1+deb11u2_amd64.deb', 'd7d3d93e00d414982eef09b57de3ad39db5ab61c16aef58241dedb75db0105fc'),
      deb('pool/main/r/redis/redis-tools_6.0.16-1+deb11u2_amd64.deb', '0329056b6cf1cc65ec1069a66bb0825ddb8307d1c6c5c93ab022fb19187138fd'),
      deb('pool/main/o/openssl/libssl1.1_1.1.1w-0+deb11u1_amd64.deb', 'aadf8b4b197335645b230c2839b4517aa444fd2e8f434e5438c48a18857988f7'),
      deb('pool/main/l/lua5.1/liblua5.1-0_5.1.5-8.1+b3_amd64.deb', '8f5341aba9fd26a797ff826b4aa4c626fd487ebe2bf659bc8b2cee450ec7f9f2'),
      deb('pool/main/l/lua-cjson/lua-cjson_2.1.0+dfsg-2.1_amd64.deb', '4bdf90fe39c1de756c22c3c52332bc6e694c53645c4059932e2e0917e9f07517'),
      deb('pool/main/l/lua-bitop/lua-bitop_1.0.2-5_amd64.deb', 'e7a286f04b4fced769b4da574e13a058dac1e6ad23660998643bf1af8a875b1a'),
      deb('pool/main/j/jemalloc/libjemalloc2_5.2.1-3_amd64.deb', 'dcb79555b137ad70c9d392ca31e04533e3a10b63aa0db02d5a26f464060cc0f5'),
      deb('pool/main/libl/liblzf/liblzf1_3.6-3_amd64.deb', '9854b0866201b63e04f1e446f45f01ef4a6f72c61f2250b75f944f6046cc7e8c'),
      deb('pool/main/g/gcc-12/libatomic1_12.2.0-14+deb12u1_amd64.deb', 'fbd4e154a6b444229ea002cc209df099209c0adc09102e5fd21239a3d2b55e2d'),
    ],
  },
  'redis-7.0': {
    version: '7.0.15',
    product: 'Redis',
    debianVersion: '5:7.0.15-1~deb12u7 (bookworm)',
    binary: 'usr/bin/redis-server',
    debs: [
      deb('pool/main/r/redis/redis-server_7.0.15-1~deb12u7_amd64.deb', '1f43e46f153d1653586e72871dd3e2ea08acba5c3d2b38b02f90d63d16352cac'),
      deb('pool/main/r/redis/redis-tools_7.0.15-1~deb12u7_amd64.deb', '3c8cd27847c6a06b6f6c29e7415a9057462a89661e3a8e2eb8dd5b2d7830bb40'),
      ...BOOKWORM_LIBS,
    ],
  },
  'valkey-8.0': {
    version: '8.0.1',
    product: 'Valkey',
    debianVersion: '8.0.1+dfsg1-1~bpo12+1 (bookworm-backports)',
    binary: 'usr/bin/valkey-server',
    debs: [
      deb('pool/main/v/valkey/valkey-server_8.0.1+dfsg1-1~bpo12+1_amd64.deb', '986d97e75766d9b18c56159dd904337ec0a1222977235cad7ba56ddc4fd856eb'),
      deb('pool/main/v/valkey/valkey-tools_8.0.1+dfsg1-1~bpo12+1_amd64.deb', 'd2c2ea67642fa9571a07138b80ae52ebe566311c952aef25a39c1d5050697853'),
      ...BOOKWORM_LIBS,
    ],
  },
});

/** @returns {string[]} the names ensureServerPackage accepts */
export function serverPackageNames() {
  return Object.keys(SERVER_PACKAGES);
}

/** The cache root; SERVER_PACKAGES_DIR overrides it (read here, at the edge, only). */
export function serverCacheDir() {
  return process.env.SERVER_PACKAGES_DIR ?? fileURLToPath(new URL('../.tmp/servers/', import.meta.url));
}

/** @param {string} name */
function packageSpec(name) {
  const spec = Object.hasOwn(SERVER_PACKAGES, name) ? SERVER_PACKAGES[name] : undefined;
  if (!spec) throw new TypeError(`Unknown server package "${name}"; use one of: ${serverPackageNames().join(', ')}`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`Server packages are pinned for linux/amd64; this is ${process.platform}/${process.arch}. Set VALKEY_SERVER_BIN instead.`);
  }
  return spec;
}

/** A unique sibling path to build in before the atomic rename that publishes it. */
const scratch = (path) => `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/** @param {string} path @param {string} sha256 @param {string} debsDir @returns {Promise<string>} local file */
async function fetchDeb(path, sha256, debsDir) {
  const file = join(debsDir, path.slice(path.lastIndexOf('/') + 1));
  if (existsSync(file)) return file; // only verified files are ever renamed into place
  const failures = [];
  for (const mirror of POOL_MIRRORS) {
    const url = mirror + path;
    let body;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) { failures.push(`${url}: HTTP ${res.status}`); continue; }
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      failures.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== sha256) throw new Error(`${url} has SHA-256 ${got}, pinned ${sha256}; refusing it (a mirror problem, or the pin is wrong)`);
    console.error(`server-packages: fetched ${url} (${body.length} bytes, sha256 ok)`);
    const tmp = scratch(file);
    writeFileSync(tmp, body);
    renameSync(tmp, file);
    return file;
  }
  throw new Error(`Could not fetch ${path}:\n  ${failures.join('\n  ')}\n` +
    'If the version left the archive, re-pin it in test/support/server-packages.mjs from `apt-cache show <pkg>=<version>`.');
}

/** @param {string} realBin @param {Record<string, string>} env @param {{ product: string, version: string }} spec */
function checkRuns(realBin, env, spec) {
  const ldd = spawnSync('ldd', [realBin], { encoding: 'utf8', env: { ...process.env, ...env } });
  const missing = (ldd.stdout ?? '').split('\n').filter((l) => l.includes('not found')).map((l) => l.trim());
  if (missing.length > 0) throw new Error(`${realBin} is missing libraries (add their packages to the pin list): ${missing.join(', ')}`);
  const v = spawnSync(realBin, ['--version'], { encoding: 'utf8', env: { ...process.env, ...env } });
  const want = `${spec.product} server v=${spec.version} `;
  if (v.status !== 0 || !(v.stdout ?? '').startsWith(want)) {
    throw new Error(`${realBin} --version should start with "${want}", got exit ${v.status}: ${v.stdout}${v.stderr}`);
  }
}

/**
 * @typedef {{ name: string, version: string, bin: string, realBin: string, env: { LD_LIBRARY_PATH: string }, dir: string }} ServerPackage
 */

/** @param {string} name @param {string} dir @returns {ServerPackage} */
function describe(name, dir) {
  const spec = SERVER_PACKAGES[name];
  const libPath = LIB_DIRS.map((d) => join(dir, d)).join(':');
  const binName = spec.binary.slice(spec.binary.lastIndexOf('/') + 1);
  return { name, version: spec.version, bin: join(dir, 'bin', binName), realBin: join(dir, spec.binary), env: { LD_LIBRARY_PATH: libPath }, dir };
}

/**
 * Fetches (first time only), verifies and unpacks a pinned server package; returns how to run it. Safe to call
 * from several processes at once: each builds in its own scratch folder and publishes it with one rename.
 * @param {string} name one of serverPackageNames()
 * @returns {Promise<ServerPackage>}
 * @throws TypeError for an unknown name; Error when a download fails, a SHA-256 differs, or the binary does not run
 */
export async function ensureServerPackage(name) {
  const spec = packageSpec(name);
  const pinHash = createHash('sha256').update(spec.debs.map((d) => d.sha256).join()).digest('hex').slice(0, 12);
  const root = serverCacheDir();
  const dir = join(root, `${name}-${pinHash}`);
  if (existsSync(join(dir, 'ready.json'))) return describe(name, dir);

  const debsDir = join(root, 'debs');
  mkdirSync(debsDir, { recursive: true });
  const files = [];
  for (const d of spec.debs) files.push(await fetchDeb(d.path, d.sha256, debsDir));

  const build = scratch(dir);
  mkdirSync(join(build, 'bin'), { recursive: true });
  try {
    for (const file of files) {
      const r = spawnSync('dpkg-deb', ['-x', file, build], { encoding: 'utf8' });
      if (r.error || r.status !== 0) throw new Error(`dpkg-deb -x ${file} failed (is dpkg installed?): ${r.error?.message ?? r.stderr}`);
    }
    const built = describe(name, build);
    checkRuns(built.realBin, built.env, spec);
    // The wrapper uses its own location so the published (renamed) folder works; exec keeps the server's pid.
    // argv[0] must stay "…/<name>-server": Debian's binary is a symlink that picks its mode from argv[0].
    const libs = LIB_DIRS.map((d) => `$here/${d}`).join(':');
    writeFileSync(built.bin, `#!/bin/sh\n# ${name} from test/support/server-packages.mjs: runs the unpacked Debian binary with its own libraries\n` +
      `here=$(cd "$(dirname "$0")/.." && pwd)\nLD_LIBRARY_PATH="${libs}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/${spec.binary}" "$@"\n`);
    chmodSync(built.bin, 0o755);
    writeFileSync(join(build, 'ready.json'), JSON.stringify({ name, version: spec.version, debianVersion: spec.debianVersion, debs: spec.debs }, null, 2));
    try {
      renameSync(build, dir);
      console.error(`server-packages: ${name} (${spec.product} ${spec.version}, Debian ${spec.debianVersion}) ready in ${dir}`);
    } catch (err) {
      // Another process published the same pins first; theirs is as good as ours.
      if (!existsSync(join(dir, 'ready.json'))) throw err;
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return describe(name, dir);
}

/**
 * ensureServerPackage for synchronous callers (find-valkey-server, scripts): runs this file in a child Node.
 * @param {string} name @returns {ServerPackage}
 */
export function ensureServerPackageSync(name) {
  packageSpec(name); // the TypeError for a bad name, here rather than from the child
  const dir = serverCacheDir();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SERVER_PACKAGES_DIR: dir },
  });
  if (r.status !== 0) throw new Error(`Could not prepare server package ${name} (exit ${r.status}); see the messages above`);
  return JSON.parse(r.stdout.trim());
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.slice(2);
  if (names.length === 0) {
    console.error(`usage: node test/support/server-packages.mjs <${serverPackageNames().join('|')}>...`);
    process.exit(2);
  }
  try {
    for (const name of names) console.log(JSON.stringify(await ensureServerPackage(name)));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
