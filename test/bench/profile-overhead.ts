// `npx tsx test/bench/profile-overhead.ts [GET|SET] [seconds] [depth]`: one bench bridge under --cpu-prof running one
// of the overhead bench's loops alone (depth 1: 1 session, 1 command at a time; depth n: 32 sessions × n pipelined),
// bounded by count and time, then the summary of its profile: the bridge's self time per command.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { latestBridgeProfile, startBridgeChild } from './bridge-process.ts';
import { isIdle, summarizeProfile } from './profile-summary.ts';
import { RespSession } from './resp-session.ts';

const op = (process.argv[2] ?? 'GET').toUpperCase() === 'SET' ? 'SET' : 'GET';
const seconds = Math.min(30, Number(process.argv[3] ?? 8));
const depth = Math.max(1, Math.min(64, Number(process.argv[4] ?? 1)));
const sessions = depth === 1 ? 1 : 32;
const MAX_COMMANDS = 2_000_000;

process.env.BENCH_PROFILE = '1';
const label = `${depth === 1 ? 'seq' : `pipe${depth}`}-${op.toLowerCase()}`;
const server = await startValkeyServer();
const bridge = await startBridgeChild(server.url, {}, label);
let done = 0;
try {
  const open = await Promise.all(Array.from({ length: sessions }, () => RespSession.bridge(bridge.url, TEST_TOKEN)));
  const prefix = randomPrefix('prof');
  const batches = Array.from({ length: 100 }, (_, b) => RespSession.encode(Array.from({ length: depth }, (_, i) =>
    (op === 'GET' ? ['GET', `${prefix}${b * depth + i}`] : ['SET', `${prefix}${b * depth + i}`, 'x'.repeat(100)]))));
  const until = performance.now() + seconds * 1000;
  await Promise.all(open.map(async (session, s) => {
    for (let b = s; done < MAX_COMMANDS && performance.now() < until; b++) {
      await session.send(batches[b % batches.length]!, depth);
      done += depth;
    }
  }));
  for (const session of open) session.close();
} finally {
  await bridge.close();
  await server.stop();
}
const file = latestBridgeProfile(label);
process.stdout.write(`${done} ${op}s (${sessions} sessions × ${depth}) in ${seconds} s (${((seconds * 1e6) / done).toFixed(1)} µs each); profile ${file}\n`);
const { busy, functions, files } = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')));
const line = ([name, msSelf]: [string, number]) =>
  `${((msSelf / busy) * 100).toFixed(1).padStart(5)} % of busy  ${((msSelf * 1000) / done).toFixed(2).padStart(6)} µs/command  ${name}\n`;
process.stdout.write(`busy (not idle): ${busy.toFixed(0)} ms = ${((busy * 1000) / done).toFixed(1)} µs per command\n\nself time by function:\n`);
for (const entry of functions.filter(([name]) => !isIdle(name)).slice(0, 30)) process.stdout.write(line(entry));
process.stdout.write('\nself time by file:\n');
for (const entry of files.filter(([name]) => !isIdle(name)).slice(0, 15)) process.stdout.write(line(entry));
