/** Runs one command: `--help`, then the command, with errors printed for an operator (message, hint). */
import { TidemarkError } from '../core/errors.ts';
import { readEnvironment } from './config.ts';
import type { Command } from './commands/command.ts';

export async function runCommand(command: Command, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(argv, readEnvironment());
  } catch (e) {
    const err = e as Error & { hint?: string; code?: string };
    // Usage errors name their command already ("agent: give at least one --disk"): say it once.
    const own = `${command.name}: `;
    const message = err.message.startsWith(own) ? err.message.slice(own.length) : err.message;
    process.stderr.write(`tidemark ${command.name}: ${message}\n`);
    if (err instanceof TidemarkError && err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    else if (err.code === 'EADDRINUSE') process.stderr.write('  hint: that address is in use; choose another --listen port\n');
    else if (!(err instanceof TidemarkError)) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}
