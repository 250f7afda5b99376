export type ServerPackageName = 'redis-6.0' | 'redis-7.0' | 'valkey-8.0';
export interface ServerPackage {
  readonly name: ServerPackageName;
  /** what `--version` and `INFO server` report, e.g. `6.0.16` */
  readonly version: string;
  /** wrapper script that sets LD_LIBRARY_PATH itself: runnable as is (Go tests, VALKEY_SERVER_BIN) */
  readonly bin: string;
  /** the unpacked Debian binary; needs `env` */
  readonly realBin: string;
  readonly env: { readonly LD_LIBRARY_PATH: string };
  readonly dir: string;
}
export const SERVER_PACKAGES: Readonly<Record<ServerPackageName, {
  version: string;
  product: 'Redis' | 'Valkey';
  debianVersion: string;
  binary: string;
  debs: { path: string; sha256: string }[];
}>>;
export function serverPackageNames(): ServerPackageName[];
export function serverCacheDir(): string;
export function ensureServerPackage(name: ServerPackageName | string): Promise<ServerPackage>;
export function ensureServerPackageSync(name: ServerPackageName | string): ServerPackage;
