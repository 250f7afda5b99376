// `npx tsx test/bench/profile-summary.ts <file.cpuprofile> [top]`: the functions with the most self time in a V8
// CPU profile (as written by `BENCH_PROFILE=1 npm run bench -- <name>` for the bench bridge), and the same
// grouped by file, to say where a bridge spends its time without opening DevTools.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time (ms), idle included. */
  readonly total: number;
  /** Sampled time (ms) not idle. */
  readonly busy: number;
  /** [function, self ms], most first. */
  readonly functions: Array<[string, number]>;
  /** [file, self ms]. */
  readonly files: Array<[string, number]>;
  /** [function, inclusive ms]: time with the function anywhere on the stack (counted once per sample). */
  readonly inclusive: Array<[string, number]>;
}

/** The function name V8 gives the samples taken while the thread waited. */
export const IDLE = '(idle)';

/** True for an entry of `functions` or `files` that is the idle samples. */
export const isIdle = (name: string): boolean => name.startsWith(IDLE) || name === `(${IDLE})`;

function fileOf(frame: ProfileNode['callFrame']): string {
  return frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/test\/bench\/\.\.\/\.\.\//, '')
    .replace(/^\/.*?\/(bridge|shared|test)\//, '$1/') || `(${frame.functionName || 'native'})`;
}

/** Self time per function and per file, and inclusive time per function. */
export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const nameOf = (frame: ProfileNode['callFrame']) => `${frame.functionName || '(anonymous)'} ${fileOf(frame)}:${frame.lineNumber + 1}`;
  let total = 0;
  let idle = 0;
  for (const [id, msSelf] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === IDLE) idle += msSelf;
    functions.set(nameOf(frame), (functions.get(nameOf(frame)) ?? 0) + msSelf);
    files.set(fileOf(frame), (files.get(fileOf(frame)) ?? 0) + msSelf);
    total += msSelf;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = nameOf(byId.get(at)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + msSelf);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, busy: total - idle, functions: sorted(functions), files: sorted(files), inclusive: sorted(inclusive) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: npx tsx test/bench/profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  const { total, functions, files, inclusive } = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const pct = (v: number) => `${((v / total) * 100).toFixed(1).padStart(5)} %`;
  process.stdout.write(`total sampled: ${total.toFixed(0)} ms\n\nself time by function:\n`);
  for (const [name, v] of functions.slice(0, top)) process.stdout.write(`${pct(v)}  ${v.toFixed(0).padStart(6)} ms  ${name}\n`);
  process.stdout.write('\nself time by file:\n');
  for (const [name, v] of files.slice(0, top)) process.stdout.write(`${pct(v)}  ${v.toFixed(0).padStart(6)} ms  ${name}\n`);
  process.stdout.write('\ninclusive time of the bridge\'s own functions (bridge/, shared/):\n');
  for (const [name, v] of inclusive.filter(([n]) => / (bridge|shared)\//.test(n)).slice(0, top)) {
    process.stdout.write(`${pct(v)}  ${v.toFixed(0).padStart(6)} ms  ${name}\n`);
  }
}
