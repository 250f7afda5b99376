// Structured logs: one JSON object per line, to stderr by default. Callers pass fields, never tokens or values;
// keys may appear at debug level only.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['debug', 'info', 'warn', 'error', 'silent']);

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** True when `level` would be written (skip building expensive fields otherwise). */
  enabled(level: LogLevel): boolean;
}

/** Where lines go: receives one complete line including the trailing newline. */
export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line);
};

/**
 * A logger writing JSON lines at `level` and above to `sink` (default: stderr).
 * Errors in fields are reduced to their name, code and message; stacks only at debug level.
 */
export function createLogger(level: LogLevel, sink: LogSink = stderrSink): Logger {
  const min = RANK[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < min) return;
    const record: LogFields = { time: new Date().toISOString(), level: lvl, msg };
    if (fields) {
      for (const [name, value] of Object.entries(fields)) record[name] = value instanceof Error ? describeError(value, min) : value;
    }
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level: lvl, msg, note: 'fields not serialisable' });
    }
    try {
      sink(line + '\n');
    } catch {
      // A broken log sink must never take the bridge down.
    }
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    enabled: (lvl) => RANK[lvl] >= min && lvl !== 'silent',
  };
}

function describeError(err: Error, min: number): LogFields {
  const out: LogFields = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (min <= RANK.debug && err.stack) out.stack = err.stack;
  return out;
}
