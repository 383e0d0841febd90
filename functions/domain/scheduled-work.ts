/**
 * The periodic pass (EventBridge schedule in AWS, a timer locally): fail jobs past their
 * deadline, raise stream-stalled alerts for disks nobody reports on, and advance drills.
 */
import type { Context } from '../deps.ts';
import { evaluateMachineAlerts } from './alerts.ts';
import { advanceDrill, runDueDrills } from './drills.ts';
import { expireJobs } from './jobs.ts';
import { listItems } from './lookup.ts';
import { Machine, Policy } from './records.ts';
import { listVaults } from './vaults.ts';

export interface ScheduledWorkSummary {
  vaults: number;
  jobsExpired: number;
}

export async function runScheduledWork(ctx: Context): Promise<ScheduledWorkSummary> {
  const vaults = await listVaults(ctx);
  let jobsExpired = 0;
  for (const v of vaults) {
    for (const job of await expireJobs(ctx, v.id)) {
      jobsExpired++;
      if (job.drillId) await advanceDrill(ctx, v.id, job.drillId);
    }
    const policies = new Map((await listItems(ctx, v.id, 'policies', Policy)).map((p) => [p.id, p]));
    for (const m of await listItems(ctx, v.id, 'machines', Machine)) {
      const policy = m.protection && policies.get(m.protection.policyId);
      if (policy) await evaluateMachineAlerts(ctx, m, policy);
    }
  }
  await runDueDrills(ctx, vaults.map((v) => v.id));
  return { vaults: vaults.length, jobsExpired };
}

