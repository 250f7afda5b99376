// Regional coordinators: the Durable Object location hints a `region` may name, and `nearestRegion`, which picks
// the hint nearest a request from its `request.cf` data, so a global Worker can keep its coordinators near the caller
// (a Durable Object lives where it was first used; docs/bridge.md, "Regional coordinators").

/** A Durable Object location hint (Cloudflare's list, as `DurableObjectLocationHint`). */
export type LocationHint = 'wnam' | 'enam' | 'sam' | 'weur' | 'eeur' | 'apac' | 'oc' | 'afr' | 'me';

/** Every location hint: a `region` with one of these names also hints where its coordinators are created. */
const LOCATION_HINTS: readonly LocationHint[] = Object.freeze(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me']);

/** True when `region` is a Durable Object location hint. */
export function isLocationHint(region: string): region is LocationHint {
  return (LOCATION_HINTS as readonly string[]).includes(region);
}

/** Countries of continent AS that the `me` (Middle East) hint serves. */
const MIDDLE_EAST = new Set(['AE', 'BH', 'IL', 'IQ', 'IR', 'JO', 'KW', 'LB', 'OM', 'PS', 'QA', 'SA', 'SY', 'YE']);

/** What `nearestRegion` reads of `request.cf` (all optional: absent in local development and tests). */
export interface RequestGeography {
  readonly cf?: { readonly continent?: unknown; readonly country?: unknown; readonly longitude?: unknown } | undefined;
}

/**
 * The location hint nearest the caller, from `request.cf` (continent, and country or longitude where a continent
 * has two hints: west/east at 100°W in North America and at 20°E in Europe, the Middle East in Asia), or undefined
 * when the request carries no such data (then coordinators stay unregioned).
 * @example const cache = CacheAside.fromEnv(env, { region: nearestRegion(request) });
 */
export function nearestRegion(request: RequestGeography): LocationHint | undefined {
  const cf = request?.cf;
  if (cf === undefined || cf === null) return undefined;
  const longitude = typeof cf.longitude === 'string' || typeof cf.longitude === 'number' ? Number(cf.longitude) : NaN;
  switch (cf.continent) {
    case 'NA': return longitude < -100 ? 'wnam' : 'enam';
    case 'SA': return 'sam';
    case 'EU': return longitude >= 20 ? 'eeur' : 'weur';
    case 'AF': return 'afr';
    case 'OC':
    case 'AN': return 'oc';
    case 'AS': return typeof cf.country === 'string' && MIDDLE_EAST.has(cf.country) ? 'me' : 'apac';
    default: return undefined;
  }
}
