/**
 * `npm run bench [-- NAME ... [--OPTION ...]]`: runs the benchmarks, each in its own process,
 * and lets each print its table; everything from the first `-` argument on goes to each of
 * them (e.g. `npm run bench -- apply --mib 64`). Not a test: numbers depend on the machine;
 * peers run in the same session.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, { file: string; what: string }> = {
  replication: { file: 'replication-main.ts', what: 'scan mode: initial sync and a 1% delta cycle of 1 GiB beside rsync' },
  tap: { file: 'tap/main.ts', what: 'tap mode through NBD beside nbdkit, and replication lag' },
  nbd: { file: 'nbd/run.ts', what: 'the NBD server alone beside nbdkit file' },
  apply: { file: 'master-target/apply.ts', what: 'master target apply beside fio' },
  export: { file: 'master-target/export.ts', what: 'master target export beside cp' },
  views: { file: 'views/views.ts', what: 'time to first byte of a view, materialisation beside qemu-img convert' },
  wan: { file: 'wan/wan.ts', what: 'WAN bytes per changed byte beside lz4 -1 and zstd -1, and 50 agents through one process server' },
};

const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const wanted = firstOption < 0 ? args : args.slice(0, firstOption);
const passed = firstOption < 0 ? [] : args.slice(firstOption);
for (const name of wanted.length ? wanted : Object.keys(BENCHES)) {
  const b = BENCHES[name];
  if (!b) {
    process.stderr.write(`unknown benchmark ${name}; known: ${Object.entries(BENCHES).map(([k, v]) => `${k} (${v.what})`).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== ${name}: ${b.what}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(b.file, import.meta.url)), ...passed], { stdio: 'inherit' });
  if (r.status !== 0) process.stderr.write(`benchmark ${name} failed (exit ${r.status})\n`);
}
