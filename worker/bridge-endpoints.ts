// Which of the bridges listed in BRIDGE_URL a coordinator talks to: a deterministic first pick from the
// coordinator's name (so coordinators spread over the bridges, each always starting at the same one), and a move to
// the next one on every failed attempt or dropped socket, back to the first pick when the coordinator goes idle.
import { binaryKey } from '../shared/bytes.ts';
import { hashKey } from './placement.ts';

/** The index of the bridge a coordinator named `name` tries first, among `count` bridges. */
export function firstBridgeIndex(name: string, count: number): number {
  return count <= 1 ? 0 : hashKey(binaryKey(name)) % count;
}

export class BridgeEndpoints {
  readonly #urls: readonly string[];
  readonly #home: number;
  #index: number;

  /** @param urls at least one `http(s)://…/resp` URL (validated by options.ts). */
  constructor(urls: readonly string[], coordinatorName: string) {
    if (urls.length === 0) throw new RangeError('BridgeEndpoints needs at least one bridge URL');
    this.#urls = urls;
    this.#home = firstBridgeIndex(coordinatorName, urls.length);
    this.#index = this.#home;
  }

  /** How many bridges are listed. */
  get count(): number {
    return this.#urls.length;
  }

  /** The bridge the next connection attempt goes to. */
  get current(): string {
    return this.#urls[this.#index]!;
  }

  /**
   * An attempt on the current bridge failed or its socket dropped: the next attempt goes to the next bridge in the
   * list (round robin). The caller's backoff decides when.
   */
  failed(): void {
    this.#index = (this.#index + 1) % this.#urls.length;
  }

  /** Back to the first pick (the coordinator closed its socket on purpose), so the spread comes back over time. */
  reset(): void {
    this.#index = this.#home;
  }
}
