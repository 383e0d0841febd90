/**
 * Scheduled drills. A drill runs its plan's test failover every `intervalSeconds`, then the
 * cleanup of that test failover, then stores a report: the point each machine came up at and
 * its age, the time to ready, the checks passed and the evidence (console logs).
 *
 *   idle ──due──► testing ──test job ended──► cleaning ──cleanup ended──► idle (+ report)
 *
 * Each transition is claimed by a conditional update of the drill record before its side
 * effect (starting a job, writing a report), so the scheduler and the site-events consumer
 * can both call `advanceDrill` and only one of them acts.
 */
import { nowIso, type Context } from '../deps.ts';
import { InvalidRequestError } from '../errors.ts';
import { recordAudit, SYSTEM_ACTOR, type Actor } from './audit.ts';
import { newId } from './ids.ts';
import { startJob } from './jobs.ts';
import { keys } from './keys.ts';
import { getItem, getVault, listItems } from './lookup.ts';
import { Drill, DrillReport, Job, Plan } from './records.ts';

export interface DrillInput {
  readonly planId: string;
  readonly intervalSeconds: number;
  /** @default now */
  readonly firstRunAt?: string;
  /** @default true */
  readonly enabled?: boolean;
}

export async function createDrill(ctx: Context, actor: Actor, vaultId: string, input: DrillInput): Promise<Drill> {
  await getVault(ctx, vaultId);
  const plan = await getItem(ctx, vaultId, 'plans', 'plan', input.planId, Plan).catch(() => undefined);
  if (!plan) throw new InvalidRequestError(`no plan ${input.planId} in vault ${vaultId}`, { field: 'planId' });
  const drill: Drill = {
    id: newId('drill'), vaultId, planId: plan.id, intervalSeconds: input.intervalSeconds,
    nextRunAt: input.firstRunAt ?? nowIso(ctx), enabled: input.enabled ?? true, phase: 'idle',
    testJobId: null, cleanupJobId: null, lastReportId: null, createdAt: nowIso(ctx),
  };
  await ctx.repo.create(keys.item(vaultId, 'drills', drill.id), drill);
  await recordAudit(ctx, actor, 'drill.create', { vaultId, targetId: drill.id, detail: { planId: plan.id, intervalSeconds: drill.intervalSeconds } });
  return drill;
}

/** The first run time after `nowMs` on the drill's grid (missed runs are skipped, not replayed). */
export function nextRunAfter(drill: Drill, nowMs: number): string {
  const intervalMs = drill.intervalSeconds * 1000;
  let next = Date.parse(drill.nextRunAt);
  if (next <= nowMs) next += Math.ceil((nowMs - next + 1) / intervalMs) * intervalMs;
  return new Date(next).toISOString();
}

type Transition =
  | { kind: 'start-test'; jobId: string }
  | { kind: 'start-cleanup'; jobId: string; testJobId: string }
  | { kind: 'report'; reportId: string; testJobId: string; cleanupJobId: string | null }
  | { kind: 'none' };

/** Moves one drill on if it is due or its job ended. Safe to call from anywhere, any time. */
export async function advanceDrill(ctx: Context, vaultId: string, drillId: string): Promise<void> {
  for (let step = 0; step < 4; step++) {
    const drill = await ctx.repo.get(keys.item(vaultId, 'drills', drillId), Drill);
    if (!drill) return;
    const want = await transitionOf(ctx, drill);
    if (want.kind === 'none') return;
    const claimed = await claim(ctx, drill, want);
    if (!claimed) return;
    await act(ctx, drill, want);
  }
}

async function jobOf(ctx: Context, vaultId: string, id: string | null): Promise<Job | undefined> {
  return id ? ctx.repo.get(keys.item(vaultId, 'jobs', id), Job) : undefined;
}

async function transitionOf(ctx: Context, d: Drill): Promise<Transition> {
  if (d.phase === 'idle') {
    return d.enabled && Date.parse(d.nextRunAt) <= ctx.now() ? { kind: 'start-test', jobId: newId('job') } : { kind: 'none' };
  }
  if (d.phase === 'testing') {
    const test = await jobOf(ctx, d.vaultId, d.testJobId);
    if (test?.state === 'running') return { kind: 'none' };
    if (!test || test.steps.every((s) => s.state === 'pending')) {
      return { kind: 'report', reportId: newId('drillReport'), testJobId: d.testJobId!, cleanupJobId: null };
    }
    return { kind: 'start-cleanup', jobId: newId('job'), testJobId: test.id };
  }
  const cleanup = await jobOf(ctx, d.vaultId, d.cleanupJobId);
  if (cleanup?.state === 'running') return { kind: 'none' };
  return { kind: 'report', reportId: newId('drillReport'), testJobId: d.testJobId!, cleanupJobId: d.cleanupJobId };
}

/** Records the transition on the drill; false if someone else changed the drill first. */
async function claim(ctx: Context, seen: Drill, t: Transition): Promise<boolean> {
  let won = false;
  await ctx.repo.update(keys.item(seen.vaultId, 'drills', seen.id), Drill, (d): Drill => {
    won = d.phase === seen.phase && d.testJobId === seen.testJobId && d.cleanupJobId === seen.cleanupJobId;
    if (!won) return d;
    if (t.kind === 'start-test') return { ...d, phase: 'testing', testJobId: t.jobId, cleanupJobId: null, nextRunAt: nextRunAfter(d, ctx.now()) };
    if (t.kind === 'start-cleanup') return { ...d, phase: 'cleaning', cleanupJobId: t.jobId };
    if (t.kind === 'report') return { ...d, phase: 'idle', lastReportId: t.reportId };
    return d;
  });
  return won;
}

async function act(ctx: Context, drill: Drill, t: Transition): Promise<void> {
  if (t.kind === 'start-test' || t.kind === 'start-cleanup') {
    try {
      await startJob(ctx, SYSTEM_ACTOR, drill.vaultId, t.kind === 'start-test'
        ? { kind: 'test-failover', planId: drill.planId, drillId: drill.id, jobId: t.jobId }
        : { kind: 'cleanup', planId: drill.planId, drillId: drill.id, jobId: t.jobId, testFailoverJobId: t.testJobId });
    } catch (err) {
      // The job could not start (e.g. a machine lost its protection): the drill fails now.
      ctx.log.warn('drill job could not start', { vaultId: drill.vaultId, drillId: drill.id, error: err as Error });
      const testJobId = t.kind === 'start-test' ? t.jobId : t.testJobId;
      const reportId = newId('drillReport');
      await ctx.repo.update(keys.item(drill.vaultId, 'drills', drill.id), Drill, (d): Drill => ({ ...d, phase: 'idle', lastReportId: reportId }));
      await writeReport(ctx, drill, reportId, testJobId, null, (err as Error).message);
    }
    return;
  }
  if (t.kind === 'report') await writeReport(ctx, drill, t.reportId, t.testJobId, t.cleanupJobId, null);
}

async function writeReport(ctx: Context, drill: Drill, reportId: string, testJobId: string, cleanupJobId: string | null, startError: string | null): Promise<DrillReport> {
  const test = await jobOf(ctx, drill.vaultId, testJobId);
  const cleanup = await jobOf(ctx, drill.vaultId, cleanupJobId);
  const startedMs = test ? Date.parse(test.createdAt) : ctx.now();
  const machines = (test?.steps ?? []).map((s) => ({
    machineId: s.machineId,
    ready: s.state === 'ready',
    point: s.point,
    pointAgeSeconds: s.point ? Math.max(0, (startedMs - Date.parse(s.point.time)) / 1000) : null,
    timeToReadySeconds: s.readyAt ? (Date.parse(s.readyAt) - startedMs) / 1000 : null,
    checks: s.checks,
    consoleLog: s.consoleLog,
    error: s.error,
  }));
  const checks = machines.flatMap((m) => m.checks);
  const allReady = machines.length > 0 && machines.every((m) => m.ready);
  const checksPassed = checks.filter((c) => c.passed).length;
  const cleanedUp = cleanup?.state === 'succeeded';
  const error = startError ?? test?.error ?? (cleanup && !cleanedUp ? `cleanup ${cleanup.state}: ${cleanup.error ?? ''}`.trim() : null);
  const report: DrillReport = {
    id: reportId, vaultId: drill.vaultId, drillId: drill.id, planId: drill.planId, testJobId, cleanupJobId,
    startedAt: new Date(startedMs).toISOString(), finishedAt: nowIso(ctx),
    outcome: test?.state === 'succeeded' && allReady && checksPassed === checks.length && cleanedUp ? 'passed' : 'failed',
    timeToReadySeconds: allReady ? Math.max(...machines.map((m) => m.timeToReadySeconds ?? 0)) : null,
    checksPassed, checksTotal: checks.length, cleanedUp, bootConsolePattern: test?.bootConsolePattern ?? null, error, machines,
  };
  await ctx.repo.create(keys.item(drill.vaultId, 'drill-reports', report.id), report);
  ctx.log.info('drill report stored', { vaultId: drill.vaultId, drillId: drill.id, reportId, outcome: report.outcome });
  return report;
}

/** Advances every drill of every vault: the scheduled drill runner's one pass. */
export async function runDueDrills(ctx: Context, vaultIds: string[]): Promise<void> {
  for (const vaultId of vaultIds) {
    for (const drill of await listItems(ctx, vaultId, 'drills', Drill)) await advanceDrill(ctx, vaultId, drill.id);
  }
}
