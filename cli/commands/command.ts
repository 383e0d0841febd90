import type { Environment } from '../config.ts';

export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[], env: Environment): Promise<number>;
}
