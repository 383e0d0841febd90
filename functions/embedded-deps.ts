/**
 * The control plane on the embedded backends: an object store and durable queues in one
 * local directory (`<dataDir>/objects`, `<dataDir>/queues`). Used by `local.ts` and tests.
 */
import { join } from 'node:path';
import { silentLogger, type Logger } from '../core/log.ts';
import { DEFAULT_SETTINGS, type ControlPlaneDeps, type ControlPlaneSettings } from './deps.ts';
import { FileQueueProvider } from './queue/file-queue.ts';
import { FileObjectStore } from './store/file-object-store.ts';

/** Name of the queue that carries site reports to the consumer. */
export const SITE_EVENTS_QUEUE = 'site-events';

export interface EmbeddedDepsOptions {
  readonly dataDir: string;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default silentLogger */
  readonly log?: Logger;
  /** @default DEFAULT_SETTINGS */
  readonly settings?: Partial<ControlPlaneSettings>;
}

export async function openEmbeddedDeps(options: EmbeddedDepsOptions): Promise<ControlPlaneDeps> {
  const root = join(options.dataDir, 'control-plane');
  const store = await FileObjectStore.open(root);
  const siteQueues = await FileQueueProvider.open(root);
  return {
    store,
    siteQueues,
    siteEvents: await siteQueues.open(SITE_EVENTS_QUEUE),
    now: options.now ?? Date.now,
    log: options.log ?? silentLogger,
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
  };
}
