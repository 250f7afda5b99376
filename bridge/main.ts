// The bridge process (`npm run bridge`, the `valkeyaside-bridge` bin): the only file that reads the environment,
// handles signals and exits. Exit codes: 0 after a clean shutdown, 2 for invalid configuration, 1 otherwise.
import { readFileSync } from 'node:fs';
import { createBridge, type Bridge } from './bridge.ts';
import { ClusterConfigError } from './cluster-topology.ts';
import { ExtensionSpecError } from './extension-specs.ts';
import { ConfigError, readConfig, settingFor, usage } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import type { OptionError } from './option-errors.ts';
import { resolveBridgeOptions, type BridgeOptions } from './options.ts';

function invalidConfiguration(setting: string, message: string): never {
  const line = JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: `invalid configuration: ${message}`, setting });
  process.stderr.write(line + '\n');
  process.exit(2);
}

let options: BridgeOptions;
try {
  const config = readConfig(process.env, process.argv.slice(2), (path) => readFileSync(path, 'utf8'));
  if (config.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  options = config.options;
  resolveBridgeOptions(options);
  // Only for a valid configuration: an invalid one is reported as its single error line.
  for (const warning of config.warnings) {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: warning }) + '\n');
  }
} catch (err) {
  if (err instanceof ConfigError) invalidConfiguration(err.setting, err.message);
  if (err instanceof TypeError || err instanceof RangeError) {
    const setting = settingFor((err as OptionError).option ?? '');
    invalidConfiguration(setting, `${setting}: ${err.message}`);
  }
  throw err;
}

const log: Logger = createLogger(options.logLevel ?? 'info');

process.on('unhandledRejection', (reason) => {
  log.error('unhandled rejection', { error: reason instanceof Error ? reason : String(reason) });
});
process.on('uncaughtException', (err) => {
  // Unknown state: exit so that a supervisor restarts us; clients reconnect and drop their caches.
  log.error('uncaught exception; exiting', { error: err });
  process.exit(1);
});

let bridge: Bridge;
try {
  bridge = await createBridge(options);
} catch (err) {
  if (err instanceof ExtensionSpecError) invalidConfiguration(settingFor('extraCommands'), err.message);
  if (err instanceof ClusterConfigError && err.code === 'ERR_NOT_CLUSTER') invalidConfiguration(settingFor('valkeyUrl'), err.message);
  log.error('bridge failed to start', { error: err as Error });
  process.exit(1);
}

let stopping = false;
function stop(signal: NodeJS.Signals): void {
  if (stopping) {
    log.warn('second signal; exiting now', { signal });
    process.exit(1);
  }
  stopping = true;
  log.info('shutting down', { signal });
  bridge.close().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error('shutdown failed', { error: err as Error });
      process.exit(1);
    },
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
