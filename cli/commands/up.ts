import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/fsutil.ts';
import { parse, required, optional } from '../args.ts';
import { startLocalStack } from '../local-stack.ts';
import { runUntilSignal } from '../run-until-signal.ts';
import type { Command } from './command.ts';

export const DEFAULT_UP_PORT = 7401;

/** The stack's token: kept in DIR/token so that restarts and agents keep working. */
async function stackToken(dataDir: string, fromEnv?: string): Promise<string> {
  if (fromEnv) return fromEnv;
  const file = join(dataDir, 'token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const t = randomBytes(24).toString('base64url');
    await writeFileAtomic(file, t);
    return t;
  }
}

export const upCommand: Command = {
  name: 'up',
  summary: 'run the local stack in one process (process server and master target)',
  help: `Usage: tidemark up --data DIR [--port N]

Runs a process server on port N (default ${DEFAULT_UP_PORT}) and a master target on N+1, on
127.0.0.1, keeping all state under DIR. A bearer token is made on first start and kept in
DIR/token; give it to agents with TIDEMARK_TOKEN.
`,
  async run(argv, env) {
    const { values } = parse('up', argv, { data: { type: 'string' }, port: { type: 'string' } });
    const dataDir = required('up', values, 'data');
    const port = Number(optional(values, 'port') ?? DEFAULT_UP_PORT);
    const token = await stackToken(dataDir, env.token);
    const stack = await startLocalStack({ dataDir, port, token, logLevel: env.logLevel });
    process.stdout.write(`Tidemark is up.
  process server  ${stack.processServerUrl}
  master target   ${stack.masterTargetUrl}
  token           ${join(dataDir, 'token')}

Protect a disk:
  TIDEMARK_TOKEN=$(cat ${join(dataDir, 'token')}) npx tidemark agent --state ./agent-state \\
    --process-server ${stack.processServerUrl} --machine $(hostname) --disk /path/to/disk.img --mode scan --interval 60

Stop with Ctrl-C.
`);
    return runUntilSignal(() => stack.close());
  },
};
