/** The `tidemark` command: dispatches to one command per file under commands/. */
import { runCommand } from './run-command.ts';
import type { Command } from './commands/command.ts';
import { masterTargetCommand } from './commands/master-target.ts';
import { processServerCommand } from './commands/process-server.ts';
import { agentCommand } from './commands/agent.ts';
import { pointsCommand } from './commands/points.ts';
import { exportCommand } from './commands/export.ts';
import { statusCommand } from './commands/status.ts';
import { upCommand } from './commands/up.ts';
import { demoCommand } from './commands/demo.ts';
import { bookmarkCommand } from './commands/bookmark.ts';
import { viewCommand } from './commands/view.ts';
import { failoverCommand } from './commands/failover.ts';
import { cleanupCommand } from './commands/cleanup.ts';
import { pushInstallCommand } from './commands/push-install.ts';

const COMMANDS: Command[] = [
  upCommand, demoCommand, agentCommand, processServerCommand, masterTargetCommand, statusCommand, pointsCommand, exportCommand, bookmarkCommand,
  viewCommand, failoverCommand, cleanupCommand, pushInstallCommand,
];

function usage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: tidemark COMMAND [OPTIONS]

Tidemark keeps servers continuously replicated to a secondary site, with point-in-time recovery.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n')}

Run 'tidemark COMMAND --help' for a command's options.
Environment: TIDEMARK_TOKEN (bearer token between components), TIDEMARK_LOG_LEVEL (debug|info|warn|error).
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('tidemark 0.1.0\n');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`tidemark: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return runCommand(command, rest);
}
