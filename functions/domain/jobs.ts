/**
 * Jobs: test failover, failover, cleanup and bookmark of a recovery plan, as a state machine
 * driven by the events master targets (and, for bookmarks, process servers) report.
 *
 *   job:  running ──► succeeded | failed            (failed also on timeout)
 *   step: pending ──► sent ──► ready | cleaned | failed
 *
 * A (test) failover sends one `failover.start` per master target for the first group of the
 * plan; when every machine of the group is ready the next group is sent; when the last group
 * is ready the job has succeeded. A failed machine fails the job and stops the sequence. A
 * cleanup sends `test-failover.cleanup` for every machine a test failover touched, at once. A
 * bookmark sends `bookmark.request` to the process server of every machine, at once.
 */
import type { JobEvent, PointChoice } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { recordAudit, type Actor } from './audit.ts';
import { isId, newId } from './ids.ts';
import { keys } from './keys.ts';
import { getItem, listItems } from './lookup.ts';
import { machineSpec } from './protection.ts';
import { Job, Machine, Plan, type JobKind, type JobStep } from './records.ts';
import { sendCommand } from './site-commands.ts';

/** Events kept on a job; older ones are dropped first. */
export const MAX_JOB_EVENTS = 500;

export interface StartJobInput {
  readonly kind: JobKind;
  readonly planId: string;
  /** cleanup: the test failover to undo. */
  readonly testFailoverJobId?: string;
  readonly drillId?: string;
  /** The id to give the job (drills claim it before starting); a new one if absent. */
  readonly jobId?: string;
  /** (Test) failovers: where the machines come up. @default 'latest' */
  readonly point?: PointChoice;
  /** Bookmarks: the name to tag. */
  readonly bookmarkName?: string;
}

const TERMINAL_STEP = new Set<JobStep['state']>(['ready', 'cleaned', 'failed']);

function event(ctx: Context, type: string, message: string, machineId: string | null = null) {
  return { at: nowIso(ctx), type, message, machineId };
}

function newStep(machineId: string, groupIndex: number, masterTargetId: string): JobStep {
  return { machineId, groupIndex, masterTargetId, state: 'pending', point: null, readyAt: null, checks: [], consoleLog: null, error: null };
}

async function stepsOf(ctx: Context, vaultId: string, input: StartJobInput, plan: Plan): Promise<{ steps: JobStep[]; testFailoverJobId: string | null }> {
  if (input.kind === 'cleanup') {
    const id = input.testFailoverJobId;
    if (!id) throw new InvalidRequestError('a cleanup job needs testFailoverJobId', { field: 'testFailoverJobId' });
    const tested = await getItem(ctx, vaultId, 'jobs', 'job', id, Job).catch(() => undefined);
    if (!tested || tested.kind !== 'test-failover' || tested.planId !== plan.id) {
      throw new InvalidRequestError(`no test failover job ${id} of plan ${plan.id}`, { field: 'testFailoverJobId' });
    }
    if (tested.state === 'running') throw new ConflictError(`test failover ${id} is still running`, { hint: 'wait for it to end' });
    const touched = tested.steps.filter((s) => s.state !== 'pending');
    return { steps: touched.map((s) => newStep(s.machineId, 0, s.masterTargetId)), testFailoverJobId: id };
  }
  const machines = new Map((await listItems(ctx, vaultId, 'machines', Machine)).map((m) => [m.id, m]));
  const steps: JobStep[] = [];
  for (const [g, group] of plan.groups.entries()) {
    for (const machineId of group.machineIds) {
      const m = machines.get(machineId);
      if (!m?.protection) throw new ConflictError(`machine ${machineId} of plan ${plan.id} is not protected`, { hint: 'enable its protection first' });
      // A bookmark tags every machine at once: one group.
      if (input.kind === 'bookmark') steps.push({ ...newStep(machineId, 0, m.protection.masterTargetId), processServerId: m.protection.processServerId });
      else steps.push(newStep(machineId, g, m.protection.masterTargetId));
    }
  }
  if (input.point && typeof input.point === 'object' && 'id' in input.point) {
    const diskId = input.point.diskId;
    const only = steps.length === 1 ? machines.get(steps[0]!.machineId) : undefined;
    if (!only) throw new InvalidRequestError('a point id names a point of one disk: only a plan of one machine takes one', { field: 'point', hint: 'give point.time for a plan of several machines' });
    if (!only.disks.some((d) => d.id === diskId)) throw new InvalidRequestError(`disk ${diskId} is not a disk of ${only.name}`, { field: 'point.diskId' });
  }
  return { steps, testFailoverJobId: null };
}

/** Which server carries a step out (and may report its events). */
function runnerOf(kind: JobKind, step: JobStep): string {
  return kind === 'bookmark' ? step.processServerId ?? step.masterTargetId : step.masterTargetId;
}

export async function startJob(ctx: Context, actor: Actor, vaultId: string, input: StartJobInput): Promise<Job> {
  const plan = await getItem(ctx, vaultId, 'plans', 'plan', input.planId, Plan).catch(() => undefined);
  if (!plan) throw new InvalidRequestError(`no plan ${input.planId} in vault ${vaultId}`, { field: 'planId' });
  const failover = input.kind === 'test-failover' || input.kind === 'failover';
  if (input.point !== undefined && !failover) throw new InvalidRequestError(`a ${input.kind} job takes no point`, { field: 'point' });
  if (input.kind === 'bookmark' && !input.bookmarkName) throw new InvalidRequestError('a bookmark job needs a name', { field: 'name' });
  if (input.kind !== 'bookmark' && input.bookmarkName !== undefined) throw new InvalidRequestError(`a ${input.kind} job takes no name`, { field: 'name' });
  const { steps, testFailoverJobId } = await stepsOf(ctx, vaultId, input, plan);
  const job: Job = {
    id: input.jobId ?? newId('job'), vaultId, kind: input.kind, planId: plan.id, state: steps.length === 0 ? 'succeeded' : 'running',
    progressPercent: steps.length === 0 ? 100 : 0, currentGroup: 0, steps,
    events: [event(ctx, 'job.started', `${input.kind} of plan ${plan.name} started by ${actor.name}`)],
    drillId: input.drillId ?? null, testFailoverJobId,
    ...(failover ? { point: input.point ?? 'latest', bootConsolePattern: plan.bootCheck ? plan.bootConsolePattern ?? null : null } : {}),
    ...(input.kind === 'bookmark' ? { bookmarkName: input.bookmarkName } : {}),
    createdBy: actor.name, createdAt: nowIso(ctx),
    deadlineAt: new Date(ctx.now() + ctx.settings.jobTimeoutSeconds * 1000).toISOString(),
    finishedAt: steps.length === 0 ? nowIso(ctx) : null, error: null,
  };
  await ctx.repo.create(keys.item(vaultId, 'jobs', job.id), job);
  await recordAudit(ctx, actor, `job.start`, {
    vaultId, targetId: job.id,
    detail: { kind: job.kind, planId: plan.id, ...(job.point ? { point: job.point } : {}), ...(job.bookmarkName ? { name: job.bookmarkName } : {}) },
  });
  if (job.state === 'running') await dispatchGroup(ctx, job, plan, 0);
  return getItem(ctx, vaultId, 'jobs', 'job', job.id, Job);
}

/** Sends the commands of one group and marks its steps sent. */
async function dispatchGroup(ctx: Context, job: Job, plan: Plan, groupIndex: number): Promise<void> {
  const steps = job.steps.filter((s) => s.groupIndex === groupIndex && s.state === 'pending');
  const byTarget = new Map<string, JobStep[]>();
  for (const s of steps) byTarget.set(runnerOf(job.kind, s), [...(byTarget.get(runnerOf(job.kind, s)) ?? []), s]);
  const machines = new Map((await listItems(ctx, job.vaultId, 'machines', Machine)).map((m) => [m.id, m]));
  for (const [masterTargetId, targetSteps] of byTarget) {
    if (job.kind === 'bookmark') {
      await sendCommand(ctx, masterTargetId, {
        type: 'bookmark.request', jobId: job.id, name: job.bookmarkName!, machines: targetSteps.map((s) => machineSpec(machines.get(s.machineId)!)),
      });
    } else if (job.kind === 'cleanup') {
      await sendCommand(ctx, masterTargetId, {
        type: 'test-failover.cleanup', jobId: job.id, testFailoverJobId: job.testFailoverJobId!, machineIds: targetSteps.map((s) => s.machineId),
      });
    } else {
      const group = plan.groups[groupIndex]!;
      await sendCommand(ctx, masterTargetId, {
        type: 'failover.start', jobId: job.id, mode: job.kind === 'test-failover' ? 'test' : 'failover', groupIndex,
        point: job.point ?? 'latest', bootCheck: plan.bootCheck, bootConsolePattern: job.bootConsolePattern ?? null,
        machines: targetSteps.map((s) => machineSpec(machines.get(s.machineId)!)),
        preActions: group.preActions, postActions: group.postActions,
      });
    }
  }
  const sent = new Set(steps.map((s) => s.machineId));
  await ctx.repo.update(keys.item(job.vaultId, 'jobs', job.id), Job, (j) => ({
    ...j,
    steps: j.steps.map((s) => (s.groupIndex === groupIndex && s.state === 'pending' && sent.has(s.machineId) ? { ...s, state: 'sent' as const } : s)),
    events: capped([...j.events, event(ctx, 'group.sent', `group ${groupIndex} sent to ${byTarget.size} ${job.kind === 'bookmark' ? 'process server' : 'master target'}(s)`)]),
  }));
}

function capped<T>(events: T[]): T[] {
  return events.length > MAX_JOB_EVENTS ? events.slice(events.length - MAX_JOB_EVENTS) : events;
}

/** Moves the job on after a step changed: next group, success or failure. Pure. */
function advance(ctx: Context, j: Job): Job {
  const done = j.steps.filter((s) => TERMINAL_STEP.has(s.state)).length;
  j.progressPercent = j.steps.length === 0 ? 100 : Math.round((done / j.steps.length) * 100);
  const failed = j.steps.find((s) => s.state === 'failed');
  if (failed) {
    j.state = 'failed';
    j.error = `machine ${failed.machineId} failed: ${failed.error ?? 'no reason given'}`;
    j.finishedAt = nowIso(ctx);
    j.events.push(event(ctx, 'job.failed', j.error));
    return j;
  }
  const groupDone = j.steps.filter((s) => s.groupIndex === j.currentGroup).every((s) => TERMINAL_STEP.has(s.state));
  if (!groupDone) return j;
  const lastGroup = Math.max(0, ...j.steps.map((s) => s.groupIndex));
  if (j.currentGroup < lastGroup) {
    j.currentGroup += 1;
    j.events.push(event(ctx, 'group.done', `group ${j.currentGroup - 1} done`));
    return j;
  }
  j.state = 'succeeded';
  j.finishedAt = nowIso(ctx);
  j.events.push(event(ctx, 'job.succeeded', `${j.kind} succeeded`));
  return j;
}

export type JobEventOutcome = { applied: true; job: Job } | { applied: false; reason: string };

/** Applies one event a master target reported. Events for jobs or machines it was not sent are refused. */
export async function applyJobEvent(ctx: Context, vaultId: string, serverId: string, e: JobEvent): Promise<JobEventOutcome> {
  if (!isId('job', e.jobId)) return { applied: false, reason: 'not a job id' };
  let refusal: string | undefined;
  const r = await ctx.repo.update(keys.item(vaultId, 'jobs', e.jobId), Job, (current) => {
    refusal = undefined;
    const j = structuredClone(current);
    const step = j.steps.find((s) => s.machineId === e.machineId);
    if (!step || runnerOf(j.kind, step) !== serverId) {
      refusal = 'the job has no such machine on this server';
      return current;
    }
    if (j.state !== 'running') {
      refusal = `the job has already ${j.state}`;
      return current;
    }
    const message = e.message ?? e.error ?? e.type;
    j.events = capped([...j.events, event(ctx, `machine.${e.type}`, message, e.machineId)]);
    if (e.type === 'progress' || TERMINAL_STEP.has(step.state)) return j;
    if (e.type === 'machine-failed') {
      step.state = 'failed';
      step.error = e.error ?? e.message ?? 'no reason given';
    } else if (e.type === 'machine-ready' && (j.kind === 'test-failover' || j.kind === 'failover')) {
      step.state = 'ready';
      step.readyAt = nowIso(ctx);
      step.point = e.point ?? null;
      step.checks = e.checks ?? [];
      step.consoleLog = e.consoleLog ?? null;
    } else if (e.type === 'machine-cleaned' && j.kind === 'cleanup') {
      step.state = 'cleaned';
    } else if (e.type === 'machine-bookmarked' && j.kind === 'bookmark') {
      step.state = 'ready';
      step.readyAt = nowIso(ctx);
      step.point = e.point ?? null;
      step.checks = e.checks ?? [];
    } else {
      refusal = `a ${e.type} event does not apply to a ${j.kind} job`;
      return current;
    }
    return advance(ctx, j);
  });
  if (!r) return { applied: false, reason: 'no such job' };
  if (refusal) return { applied: false, reason: refusal };
  const { before, after } = r;
  if (after.state === 'running' && after.currentGroup !== before.currentGroup) {
    const plan = await getItem(ctx, vaultId, 'plans', 'plan', after.planId, Plan);
    await dispatchGroup(ctx, after, plan, after.currentGroup);
  }
  return { applied: true, job: after };
}

/** Fails every running job of the vault whose deadline passed; returns those it failed. */
export async function expireJobs(ctx: Context, vaultId: string): Promise<Job[]> {
  const expired: Job[] = [];
  for (const job of await listItems(ctx, vaultId, 'jobs', Job)) {
    if (job.state !== 'running' || Date.parse(job.deadlineAt) > ctx.now()) continue;
    const r = await ctx.repo.update(keys.item(vaultId, 'jobs', job.id), Job, (j) => {
      if (j.state !== 'running') return j;
      const error = 'timed out waiting for the master target';
      return { ...j, state: 'failed' as const, error, finishedAt: nowIso(ctx), events: capped([...j.events, event(ctx, 'job.failed', error)]) };
    });
    if (r && r.before.state === 'running') expired.push(r.after);
  }
  return expired;
}
