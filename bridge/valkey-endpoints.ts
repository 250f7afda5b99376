// Where Valkey is: a `redis://` / `rediss://` URL parsed into an endpoint (the password kept out of errors and logs),
// or, in cluster mode, a comma-separated list of seed URLs checked together. Part of options.ts's validation.
import { describe, fail, int } from './option-errors.ts';

/** The options these checks read (a subset of BridgeOptions). */
export interface EndpointOptions {
  readonly cluster?: boolean;
  readonly clusterRefreshMs?: number;
  readonly subscriberUrl?: string;
  readonly valkeyTls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** Cluster mode: the seed nodes and the slot map refresh interval. */
export type ClusterSeeds = Readonly<{ seeds: readonly ValkeyEndpoint[]; refreshMs: number }>;

/** Where and how to reach Valkey, parsed from a URL. `display` has the password removed, for logs. */
export interface ValkeyEndpoint {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly tls: boolean;
  readonly display: string;
  /** Extra TLS settings for rediss:// (CA, client certificate). */
  readonly tlsOptions?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/**
 * Parses a `redis://` / `rediss://` URL. The password never appears in errors or in `display`.
 * @throws TypeError / RangeError naming `option`.
 */
export function parseValkeyUrl(option: string, url: unknown): ValkeyEndpoint {
  if (typeof url !== 'string') fail('type', option, `${option} must be a string, got ${describe(url)}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail('range', option, `${option} must be a redis:// or rediss:// URL, got a string that is not a URL`);
  }
  const shown = `${parsed.protocol}//${parsed.hostname}${parsed.port ? ':' + parsed.port : ''}${parsed.pathname}`;
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    fail('range', option, `${option} must use redis:// or rediss://, got ${JSON.stringify(shown)}`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) fail('range', option, `${option} has no host: ${JSON.stringify(shown)}`);
  const port = parsed.port ? Number(parsed.port) : 6379;
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) {
    fail('range', option, `${option} path must be a database number like /0, got ${JSON.stringify(shown)}`);
  }
  if (parsed.search || parsed.hash) fail('range', option, `${option} must not have a query or fragment`);
  return Object.freeze({
    host,
    port,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: path === '' ? 0 : Number(path),
    tls: parsed.protocol === 'rediss:',
    display: shown,
  });
}

export function withTls(endpoint: ValkeyEndpoint, options: EndpointOptions): ValkeyEndpoint {
  return options.valkeyTls ? Object.freeze({ ...endpoint, tlsOptions: options.valkeyTls }) : endpoint;
}

/** Cluster mode: seeds from a comma-separated valkeyUrl, all on db 0 with one TLS mode; a list without it is an error. */
export function resolveCluster(options: EndpointOptions, url: unknown, defaultRefreshMs: number): ClusterSeeds | null {
  const on = options.cluster ?? false;
  if (typeof on !== 'boolean') fail('type', 'cluster', `cluster must be a boolean, got ${describe(on)}`);
  const many = typeof url === 'string' && url.includes(',');
  if (!on) {
    if (many) fail('range', 'valkeyUrl', 'valkeyUrl lists several URLs, which only cluster mode takes: set cluster: true (VALKEY_CLUSTER=true) or give one URL');
    if (options.clusterRefreshMs !== undefined) fail('range', 'clusterRefreshMs', 'clusterRefreshMs applies only with cluster: true');
    return null;
  }
  if (options.subscriberUrl !== undefined) fail('range', 'subscriberUrl', 'subscriberUrl is not supported with cluster: true');
  const urls = typeof url === 'string' ? url.split(',').map((u) => u.trim()).filter((u) => u !== '') : [url];
  if (urls.length === 0) fail('range', 'valkeyUrl', 'valkeyUrl must name at least one seed node');
  const seeds = urls.map((u) => withTls(parseValkeyUrl('valkeyUrl', u), options));
  if (seeds.some((s) => s.db !== 0)) fail('range', 'valkeyUrl', 'valkeyUrl must not select a database (/db) with cluster: true; a cluster has only db 0');
  if (seeds.some((s) => s.tls !== seeds[0]!.tls)) fail('range', 'valkeyUrl', 'valkeyUrl seeds must all use redis:// or all rediss://');
  const refreshMs = int('clusterRefreshMs', options.clusterRefreshMs ?? defaultRefreshMs, 50, 600_000);
  return Object.freeze({ seeds: Object.freeze(seeds), refreshMs });
}
