// The demo origin `npm start` puts behind the example Worker: serves a value per key and counts loads, so a user
// can watch the stampede protection (many requests, one load). Keys starting with "missing" are 404s, "slow" take 2 s.
import { createServer, type Server } from 'node:http';

export interface DemoOrigin {
  readonly url: string;
  readonly loads: Map<string, number>;
  close(): Promise<void>;
}

const SLOW_MS = 2_000;

export function startDemoOrigin(port: number, host = '127.0.0.1', log: (line: string) => void = () => {}): Promise<DemoOrigin> {
  const loads = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/__loads') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.fromEntries(loads)));
      return;
    }
    const key = decodeURIComponent(url.pathname.slice(1));
    const n = (loads.get(key) ?? 0) + 1;
    loads.set(key, n);
    log(`origin: load #${n} of ${JSON.stringify(key)}`);
    if (key.startsWith('missing')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`value of ${key} (origin load #${n} at ${new Date().toISOString()})`);
    };
    if (key.startsWith('slow')) setTimeout(answer, SLOW_MS).unref();
    else answer();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      resolve({
        url: `http://${host}:${actual}`,
        loads,
        close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}
