import { describe, expect, it } from 'vitest';
import { isLocationHint, nearestRegion } from '../../worker/region.ts';

describe('worker regions', () => {
  it('picks the location hint nearest the caller from request.cf', () => {
    const at = (continent: string, extra: Record<string, string> = {}) => nearestRegion({ cf: { continent, ...extra } });
    expect(at('NA', { longitude: '-122.42' })).toBe('wnam');
    expect(at('NA', { longitude: '-74.01' })).toBe('enam');
    expect(at('NA')).toBe('enam');
    expect(at('SA')).toBe('sam');
    expect(at('EU', { longitude: '2.35' })).toBe('weur');
    expect(at('EU', { longitude: '21.01' })).toBe('eeur');
    expect(at('AF')).toBe('afr');
    expect(at('OC')).toBe('oc');
    expect(at('AS', { country: 'JP' })).toBe('apac');
    expect(at('AS', { country: 'AE' })).toBe('me');
    for (const continent of ['NA', 'SA', 'EU', 'AF', 'OC', 'AS', 'AN']) expect(isLocationHint(at(continent)!)).toBe(true);
  });

  it('answers undefined when the request carries no geography (local development)', () => {
    expect(nearestRegion({})).toBeUndefined();
    expect(nearestRegion({ cf: undefined })).toBeUndefined();
    expect(nearestRegion({ cf: { continent: 'T1' } })).toBeUndefined();
    expect(nearestRegion(new Request('https://example.com/') as { cf?: undefined })).toBeUndefined();
  });

  it('knows the location hints and nothing else', () => {
    expect(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'].every(isLocationHint)).toBe(true);
    expect(isLocationHint('LHR')).toBe(false);
    expect(isLocationHint('WEUR')).toBe(false);
  });
});
