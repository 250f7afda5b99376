// The WebSocket upgrade to one bridge: bearer auth, the protocol versions offered (v2 first, v1 for older bridges),
// and a ConnectionError that says what to check when the bridge cannot be reached or refuses.
import { ConnectionError } from '../shared/errors.ts';
import { RESP_SUBPROTOCOL, RESP_SUBPROTOCOL_V2 } from '../shared/protocol.ts';
import { errorMessage } from './errors.ts';

/**
 * Opens an accepted WebSocket to the bridge at `url` within `connectTimeoutMs`, with the protocol version it selected
 * (1 when it selected none: an older bridge).
 * @throws ConnectionError when the bridge cannot be reached in time or refuses the upgrade (401: check BRIDGE_TOKEN).
 */
export async function upgradeToBridge(url: string, token: string, connectTimeoutMs: number): Promise<{ ws: WebSocket; version: 1 | 2 }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), connectTimeoutMs);
  try {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}`, 'Sec-WebSocket-Protocol': `${RESP_SUBPROTOCOL_V2}, ${RESP_SUBPROTOCOL}` },
        signal: controller.signal,
      });
    } catch (error) {
      throw new ConnectionError(controller.signal.aborted
        ? `connecting to the bridge at ${url} timed out after ${connectTimeoutMs} ms`
        : `cannot reach the bridge at ${url}: ${errorMessage(error)}`, { cause: error });
    }
    const ws = response.webSocket;
    if (ws === null) {
      const body = (await response.text().catch(() => '')).slice(0, 200);
      const hint = response.status === 401 ? ' (check BRIDGE_TOKEN)' : response.status === 404 ? ' (check the path of BRIDGE_URL)' : '';
      throw new ConnectionError(`the bridge at ${url} refused the WebSocket upgrade with HTTP ${response.status}${hint}: ${body}`);
    }
    ws.accept();
    // Newer compatibility dates deliver binary frames as Blob by default; the decoder wants bytes at once.
    ws.binaryType = 'arraybuffer';
    return { ws, version: response.headers.get('Sec-WebSocket-Protocol') === RESP_SUBPROTOCOL_V2 ? 2 : 1 };
  } finally {
    clearTimeout(timer);
  }
}
