// Prometheus metrics of one bridge, on its own prom-client Registry (never the global one, so that several bridges
// can live in one process), with the default process metrics. Labels are bounded: command names from the allowlist
// (else OTHER) and a fixed set of error kinds.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeHealth } from './tracker.ts';

export type ErrorKind =
  | 'auth'
  | 'session_limit'
  | 'not_allowed'
  | 'arity'
  | 'syntax'
  | 'noperm'
  | 'noscript'
  | 'unavailable'
  | 'timeout'
  | 'valkey'
  | 'protocol'
  | 'too_big'
  | 'slow_reader'
  | 'heartbeat'
  | 'internal';

/** Values read on each scrape. */
export interface MetricsSources {
  sessions(): number;
  trackedPairs(): number;
  epoch(): number;
  pendingReads(): number;
  /** Valkey Cluster primaries (empty for one server). */
  nodes(): readonly NodeHealth[];
}

export class BridgeMetrics {
  readonly registry = new Registry();
  readonly commands: Counter<'command'>;
  readonly errors: Counter<'kind'>;
  readonly invalidationsReceived: Counter;
  readonly invalidationsDelivered: Counter;
  /**
   * Per-frame counts, added to their counters on scrape: a fan-out to 1,000 sessions then costs 1,000 additions, not
   * 2,000 prom-client increments (each a label lookup and validation) on the path the push-floor bench measures.
   */
  readonly perFrame = { delivered: 0, bytesOut: 0, bytesIn: 0, messagesIn: 0 };
  readonly epochs: Counter;
  readonly frameBytesIn: Counter;
  /** One per client message: a client's round trips (it pipelines a turn's commands into one message). */
  readonly messagesIn: Counter;
  readonly frameBytesOut: Counter;
  readonly authFailures: Counter<'reason'>;
  // prom-client's inc({ label }) hashes and validates the labels on every call; a child per value skips both.
  readonly #commandCounters = new Map<string, Counter.Internal>();
  readonly #errorCounters = new Map<ErrorKind, Counter.Internal>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    gauge('bridge_sessions', 'Open WebSocket sessions.', () => sources.sessions());
    gauge('bridge_tracked_pairs', 'Registered (key, session) pairs awaiting an invalidation.', () => sources.trackedPairs());
    gauge('bridge_epoch', 'Current tracking epoch (bumped whenever a tracked Valkey connection is lost).', () => sources.epoch());
    gauge('bridge_pending_tracked_reads', 'TRACKED.GET reads sent and not yet written to their session.', () => sources.pendingReads());
    // Per cluster primary (label values bounded by the cluster's size); a departed primary's series disappear.
    const perNode = (name: string, help: string, read: (n: NodeHealth) => number) =>
      new Gauge({
        name, help, labelNames: ['node'], registers,
        collect() {
          this.reset();
          for (const node of sources.nodes()) this.set({ node: node.node }, read(node));
        },
      });
    perNode('bridge_valkey_node_connected', 'Cluster primary: 1 when both its data and subscriber connections are ready.', (n) => Number(n.dataReady && n.subReady));
    perNode('bridge_valkey_node_tracking', 'Cluster primary: 1 when CLIENT TRACKING is established for its current epoch.', (n) => Number(n.tracking));
    perNode('bridge_valkey_node_epoch', 'Cluster primary: epoch of its connection pair (bumped when one of them is lost).', (n) => n.epoch);
    perNode('bridge_valkey_node_slots', 'Cluster primary: hash slots the bridge routes to it.', (n) => n.slots);
    this.commands = new Counter({ name: 'bridge_commands_total', help: 'Commands received, by name.', labelNames: ['command'], registers });
    this.errors = new Counter({ name: 'bridge_errors_total', help: 'Errors by kind (refusals, Valkey errors, closes).', labelNames: ['kind'], registers });
    this.invalidationsReceived = new Counter({
      name: 'bridge_invalidations_received_total', help: 'Invalidation messages received from Valkey (null flushes included).', registers,
    });
    const perFrame = this.perFrame;
    this.invalidationsDelivered = new Counter({
      name: 'bridge_invalidations_delivered_total', help: 'Keys pushed to sessions (a null push counts as one).', registers,
      collect() { this.inc(perFrame.delivered); perFrame.delivered = 0; },
    });
    this.epochs = new Counter({ name: 'bridge_epochs_total', help: 'Tracked Valkey connections lost (new epochs).', registers });
    // Per message too: counted in perFrame and added on scrape.
    this.frameBytesIn = new Counter({
      name: 'bridge_frame_bytes_in_total', help: 'WebSocket message bytes received from clients.', registers,
      collect() { this.inc(perFrame.bytesIn); perFrame.bytesIn = 0; },
    });
    this.messagesIn = new Counter({
      name: 'bridge_messages_in_total', help: 'WebSocket messages received from clients.', registers,
      collect() { this.inc(perFrame.messagesIn); perFrame.messagesIn = 0; },
    });
    this.authFailures = new Counter({
      name: 'bridge_auth_failures_total', help: 'Upgrades refused for authentication, by reason (missing, invalid, duplicate, throttled).', labelNames: ['reason'], registers,
    });
    this.frameBytesOut = new Counter({
      name: 'bridge_frame_bytes_out_total', help: 'WebSocket message bytes sent to clients.', registers,
      collect() { this.inc(perFrame.bytesOut); perFrame.bytesOut = 0; },
    });
  }

  /** One command of `name` (an allowlist label): its counter child is looked up once, not per command. */
  command(name: string): void {
    let child = this.#commandCounters.get(name);
    if (!child) this.#commandCounters.set(name, (child = this.commands.labels(name)));
    child.inc();
  }

  error(kind: ErrorKind): void {
    let child = this.#errorCounters.get(kind);
    if (!child) this.#errorCounters.set(kind, (child = this.errors.labels(kind)));
    child.inc();
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
