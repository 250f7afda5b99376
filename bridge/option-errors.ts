// How a bad option is reported: a TypeError or RangeError that names the option (so the CLI can name the setting)
// and describes the value received without echoing long strings; plus the integer check most options share.

/** An option error carries the option's name so that the CLI can name the setting that set it. */
export type OptionError = (TypeError | RangeError) & { option: string };

export function fail(kind: 'type' | 'range', option: string, message: string): never {
  const err = (kind === 'type' ? new TypeError(message) : new RangeError(message)) as OptionError;
  err.option = option;
  throw err;
}

/** `name` is how messages call the value when it is a field of the option (`tokens[0].maxSessions`). */
export function int(option: string, value: unknown, min: number, max: number, name = option): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail('type', option, `${name} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) fail('range', option, `${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
