// A throw-away CA, a server certificate (SAN 127.0.0.1/localhost unless told otherwise) and a client certificate,
// all signed by that CA, made with the openssl CLI at test time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** A client certificate and key signed by the same CA (for servers started with --tls-auth-clients yes). */
  readonly clientCert: string;
  readonly clientKey: string;
}

/**
 * Generates a CA and a server and a client certificate signed by it.
 * @param san the server certificate's subjectAltName (default `IP:127.0.0.1,DNS:localhost`)
 */
export function makeTestCerts(san = 'IP:127.0.0.1,DNS:localhost'): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const sign = (name: string, subject: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  };
  try {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca');
    sign('server', '/CN=test-server', `subjectAltName=${san}`);
    sign('client', '/CN=test-client', 'extendedKeyUsage=clientAuth');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  const certs = {
    ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key'), clientCert: read('client.crt'), clientKey: read('client.key'),
  };
  rmSync(dir, { recursive: true, force: true });
  return certs;
}
