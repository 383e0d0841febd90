// A scan thread started from a checkout: TypeScript runs through tsx, as in bin/tidemark.js.
// (The single-file bundle starts its scan threads from itself instead.)
import { register } from 'tsx/esm/api';

register();
const { runScanWorker } = await import('./scan-worker.ts');
await runScanWorker();
