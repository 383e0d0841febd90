/**
 * The entry of the single-file agent (scripts/bundle-agent.ts): `node tidemark-agent.mjs agent
 * ...` runs exactly `tidemark agent ...`, without the other commands and their dependencies.
 */
import { agentCommand } from './commands/agent.ts';
import { runCommand } from './run-command.ts';

const USAGE = `Usage: tidemark-agent.mjs agent [OPTIONS]

The Tidemark agent in one file: it protects disks of this machine. This build has only the
agent command; run 'tidemark-agent.mjs agent --help' for its options.
`;

export async function agentMain(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version') {
    process.stdout.write('tidemark 0.1.0 (agent)\n');
    return 0;
  }
  if (name === agentCommand.name) return runCommand(agentCommand, rest);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  process.stderr.write(`tidemark-agent: unknown command '${name}': this build has only 'agent'\n\n${USAGE}`);
  return 2;
}
