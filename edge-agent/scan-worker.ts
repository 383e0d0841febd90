/**
 * The body of a scan thread: takes units (scan-unit.ts) from the agent, answers each with its
 * hashes, kinds and changed bytes. The changed bytes travel as a transferred buffer, not a copy,
 * and read buffers come back for reuse. Buffers are allocated unpooled so that they can be transferred.
 */
import { parentPort } from 'node:worker_threads';
import { loadHashing } from '../core/hash.ts';
import { scanUnit, UNIT_BYTES, type RecycleMessage, type UnitReply, type UnitRequest } from './scan-unit.ts';

/** `workerData.role` of a scan thread started from the single-file agent bundle. */
export const SCAN_THREAD_ROLE = 'tidemark-scan';
/** Read buffers kept for reuse: fresh ones cost a page fault per 4 KiB on first use. */
const SPARE_BUFFERS = 4;

export async function runScanWorker(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('a scan thread must run as a worker thread');
  await loadHashing();
  const spare: Buffer[] = [];
  const nextScratch = () => spare.pop() ?? Buffer.allocUnsafeSlow(UNIT_BYTES);
  let scratch = nextScratch();
  port.on('message', (msg: UnitRequest | RecycleMessage) => {
    if ('recycle' in msg) {
      if (spare.length < SPARE_BUFFERS && msg.recycle.byteLength === UNIT_BYTES) spare.push(Buffer.from(msg.recycle));
      return;
    }
    const req = msg;
    let reply: UnitReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const { result, scratchTaken } = scanUnit(req, scratch);
      reply = result;
      if (result.data.byteLength > 0) transfer = [result.data.buffer as ArrayBuffer];
      if (scratchTaken) scratch = nextScratch();
    } catch (e) {
      reply = { id: req.id, error: (e as Error).message };
    }
    port.postMessage(reply, transfer);
  });
}
