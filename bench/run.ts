/**
 * `npm run bench [-- NAME ...]`: runs the benchmarks and prints their tables. Not a test:
 * numbers depend on the machine; peers run in the same session for comparison.
 */
import { replicationBench } from './replication.ts';
import { tapBench } from './tap/run.ts';

const BENCHES: Record<string, () => Promise<void>> = {
  replication: replicationBench,
  tap: tapBench,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(BENCHES)) {
  const run = BENCHES[name];
  if (!run) {
    process.stderr.write(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  await run();
}
