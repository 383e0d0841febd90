/** Failures of replica machines. Messages are lowercase; hints say what an operator can do. */
import { TidemarkError } from '../../core/errors.ts';

/** A machine could not be created, started, stopped or deleted. */
export class HypervisorError extends TidemarkError {}

/** No machine of that name is known to the adapter. */
export class MachineNotFoundError extends HypervisorError {
  constructor(name: string) {
    super(`no machine named ${name}`, { hint: 'list the machines of this master target to see their names' });
  }
}

/** The console did not show the expected pattern in time. */
export class ConsoleTimeoutError extends HypervisorError {
  constructor(name: string, pattern: string, timeoutMs: number, consoleLogPath: string) {
    super(`machine ${name} did not print ${pattern} on its console within ${timeoutMs} ms`, {
      hint: `read its console log at ${consoleLogPath}; a slow host (no KVM) may need a longer timeout`,
    });
  }
}

/** The machine ended before its console showed the expected pattern. */
export class MachineStoppedError extends HypervisorError {
  constructor(name: string, pattern: string, consoleLogPath: string) {
    super(`machine ${name} stopped before printing ${pattern} on its console`, {
      hint: `read its console log at ${consoleLogPath} to see how far it got`,
    });
  }
}
