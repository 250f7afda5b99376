// Public entry of the bridge service (`valkeyaside-edge/bridge`): re-exports only.
export { createBridge } from './bridge.ts';
export { ClusterConfigError } from './cluster-topology.ts';
export type { Bridge, BridgeHealth, BridgeStats } from './bridge.ts';
export { BRIDGE_DEFAULTS, resolveBridgeOptions } from './options.ts';
export type { BridgeOptions, BridgeToken, ResolvedBridgeOptions } from './options.ts';
export type { LogLevel, LogSink } from './log.ts';
