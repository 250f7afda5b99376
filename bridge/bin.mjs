#!/usr/bin/env node
// The `valkeyaside-bridge` command (and `npm run bridge`): checks that the bridge's Node runtime is installed, then
// runs the compiled bridge (dist/bridge/main.js) with plain node. That runtime is an optional peer dependency of
// valkeyaside-edge, so that installing the package for a Worker brings none of it.
import { existsSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const missing = Object.keys(pkg.peerDependencies ?? {}).filter((name) => {
  try {
    import.meta.resolve(name);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  const install = missing.map((name) => `${name}@${pkg.peerDependencies[name]}`).join(' ');
  process.stderr.write(`valkeyaside-bridge: missing ${missing.join(', ')} (the bridge's runtime; a Worker does not need it). ` +
    `Install it next to valkeyaside-edge: npm install ${install}\n`);
  process.exit(1);
}
const main = new URL('../dist/bridge/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('valkeyaside-bridge: dist/bridge/main.js is missing: run `npm run build` first (a git checkout is not built)\n');
  process.exit(1);
}
await import(main.href);
