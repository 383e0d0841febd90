/**
 * Lambda entry of the scheduled pass, started by an EventBridge schedule: fails jobs past
 * their deadline, raises alerts for disks nobody reports on, and starts and advances drills.
 */
import { awsDeps } from '../aws-deps.ts';
import { readConfig } from '../config.ts';
import { contextOf, type Context } from '../deps.ts';
import { runScheduledWork, type ScheduledWorkSummary } from '../domain/scheduled-work.ts';

/** The part of an EventBridge scheduled event this handler reads. */
export interface ScheduledEvent {
  'detail-type'?: string;
  source?: string;
  time?: string;
}

let ctx: Context | undefined;

export async function drillRunnerHandler(event: ScheduledEvent): Promise<ScheduledWorkSummary> {
  ctx ??= contextOf(awsDeps(readConfig(), 'control-plane-drill-runner'));
  const summary = await runScheduledWork(ctx);
  ctx.log.info('scheduled pass done', { scheduledAt: event.time, ...summary });
  return summary;
}

export { drillRunnerHandler as handler };
