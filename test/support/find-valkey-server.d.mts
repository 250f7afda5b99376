export function serverVersion(bin: string): { name: string; version: string; major: number } | null;
export function findValkeyServer(options?: { install?: boolean }): string;
export function installValkeyFromBackports(): void;
