/** The two files a push install copies: the single-file agent and install.sh (scripts/bundle-agent.ts makes both). */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const AGENT_BUNDLE_FILE = 'tidemark-agent.mjs';
export const INSTALL_SCRIPT_FILE = 'install.sh';
/** Where `npm run bundle-agent` puts them in a checkout. */
export const DEFAULT_AGENT_DIR = fileURLToPath(new URL('../../dist/agent', import.meta.url));

export interface AgentFiles {
  bundlePath: string;
  installScriptPath: string;
  bundleBytes: number;
}

/** The files in `dir`; rejects, naming the missing one, when either is not there. */
export async function agentFiles(dir: string): Promise<AgentFiles> {
  const bundlePath = join(dir, AGENT_BUNDLE_FILE);
  const installScriptPath = join(dir, INSTALL_SCRIPT_FILE);
  const bundle = await stat(bundlePath).catch(() => undefined);
  if (!bundle?.isFile()) throw new Error(`${bundlePath} is missing`);
  if (!(await stat(installScriptPath).catch(() => undefined))?.isFile()) throw new Error(`${installScriptPath} is missing`);
  return { bundlePath, installScriptPath, bundleBytes: bundle.size };
}
