// Commands queued in one turn leave as few WebSocket messages as the size limit allows: a message per command cost
// a send each. A command is never split, so one huge command may exceed the limit alone.

/** `chunks` (encoded commands, in order) joined into messages of at most `maxBytes` each, unless one chunk is larger. */
export function batchMessages(chunks: readonly Uint8Array[], maxBytes: number): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = 0;
  for (const chunk of chunks) {
    if (size > 0 && size + chunk.length > maxBytes) {
      messages.push(concat(batch, size));
      batch = [];
      size = 0;
    }
    batch.push(chunk);
    size += chunk.length;
  }
  if (batch.length > 0) messages.push(concat(batch, size));
  return messages;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
