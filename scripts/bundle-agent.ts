/**
 * Builds the single-file agent: `DIR/tidemark-agent.mjs` (run with plain `node`, no
 * node_modules beside it) and a copy of `edge-agent/install.sh` beside it, the two files an
 * install needs (docs/agent-install.md).
 *
 *   node --import tsx scripts/bundle-agent.ts [--out DIR]     (default dist/agent)
 *
 * WebAssembly: hash-wasm carries its modules inline; lz4-wasm-nodejs reads
 * `lz4_wasm_nodejs_bg.wasm` beside its script at load time, so the bundle gets those bytes
 * inline (base64) in place of that read.
 */
import { build, type Plugin } from 'esbuild';
import { copyFile, chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AGENT_BUNDLE_FILE, INSTALL_SCRIPT_FILE } from '../process-server/push-install/agent-files.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const LZ4_WASM_READ = "const path = require('path').join(__dirname, 'lz4_wasm_nodejs_bg.wasm');\nconst bytes = require('fs').readFileSync(path);";

/** Replaces lz4-wasm-nodejs's read of its .wasm file by the file's bytes. */
const inlineLz4Wasm: Plugin = {
  name: 'inline-lz4-wasm',
  setup(b) {
    b.onLoad({ filter: /lz4-wasm-nodejs[\\/]lz4_wasm_nodejs\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(LZ4_WASM_READ)) {
        throw new Error(`${args.path} no longer reads its .wasm as expected ("${LZ4_WASM_READ}"): update scripts/bundle-agent.ts`);
      }
      const wasm = await readFile(join(dirname(args.path), 'lz4_wasm_nodejs_bg.wasm'));
      return { contents: source.replace(LZ4_WASM_READ, `const bytes = Buffer.from(${JSON.stringify(wasm.toString('base64'))}, 'base64');`), loader: 'js' };
    });
  },
};

export interface AgentBundle {
  bundlePath: string;
  installScriptPath: string;
  bundleBytes: number;
}

/** Builds the bundle into `outDir` and copies install.sh beside it. */
export async function bundleAgent(outDir: string): Promise<AgentBundle> {
  await mkdir(outDir, { recursive: true });
  const bundlePath = join(outDir, AGENT_BUNDLE_FILE);
  await build({
    stdin: {
      // The bundle is also the body of the agent's scan threads (edge-agent/scan-threads.ts).
      contents: [
        "import { isMainThread, workerData } from 'node:worker_threads';",
        "import { agentMain } from './cli/agent-bin.ts';",
        "import { runScanWorker, SCAN_THREAD_ROLE } from './edge-agent/scan-worker.ts';",
        'if (isMainThread) process.exitCode = await agentMain(process.argv.slice(2));',
        'else if (workerData?.role === SCAN_THREAD_ROLE) await runScanWorker();',
        '',
      ].join('\n'),
      resolveDir: REPO_ROOT,
      sourcefile: 'tidemark-agent.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundlePath,
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [inlineLz4Wasm],
    // CommonJS dependencies call require() for Node's modules; an ES module needs one made for it.
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __tmCreateRequire } from 'node:module';\nconst require = __tmCreateRequire(import.meta.url);" },
  });
  await chmod(bundlePath, 0o755);
  const installScriptPath = join(outDir, INSTALL_SCRIPT_FILE);
  await copyFile(join(REPO_ROOT, 'edge-agent', INSTALL_SCRIPT_FILE), installScriptPath);
  await chmod(installScriptPath, 0o755);
  return { bundlePath, installScriptPath, bundleBytes: (await stat(bundlePath)).size };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const r = await bundleAgent(values.out ?? join(REPO_ROOT, 'dist', 'agent'));
  process.stdout.write(`${r.bundlePath} (${(r.bundleBytes / 1024).toFixed(0)} KiB)\n${r.installScriptPath}\n`);
}
