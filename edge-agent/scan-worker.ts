/**
 * The body of a scan thread: takes units (scan-unit.ts) from the agent, reads each into the
 * shared slot the request lends, and answers with its hashes, kinds and changed bytes (left in
 * the slot, or a small transferred copy).
 */
import { parentPort } from 'node:worker_threads';
import { loadHashing } from '../core/hash.ts';
import { READ_BYTES, scanUnit, type UnitReply, type UnitRequest } from './scan-unit.ts';

/** `workerData.role` of a scan thread started from the single-file agent bundle. */
export const SCAN_THREAD_ROLE = 'tidemark-scan';

export async function runScanWorker(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('a scan thread must run as a worker thread');
  await loadHashing();
  const piece = Buffer.allocUnsafeSlow(READ_BYTES);
  port.on('message', (req: UnitRequest) => {
    let reply: UnitReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const result = scanUnit(req, piece);
      reply = result;
      if (!result.inSlot && result.data.byteLength > 0) transfer = [result.data.buffer as ArrayBuffer];
    } catch (e) {
      reply = { id: req.id, error: (e as Error).message };
    }
    port.postMessage(reply, transfer);
  });
}
