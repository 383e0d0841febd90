// Pieces the pages share: roles, state and RPO badges, errors, the machine plans of machine actions.
import { api, get } from './api.js';
import { h } from './dom.js';
import { seconds } from './format.js';

const ROLES = ['viewer', 'operator', 'admin'];

/** True if `role` may do what `needed` may (the server's rule). */
export function roleAllows(role, needed) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/**
 * A button that is enabled only for `needed` and up; otherwise disabled, with a note saying why
 * (the server refuses it too).
 */
export function guardedButton(session, needed, attrs, text) {
  if (roleAllows(session.role, needed)) return h('button', { type: 'button', ...attrs }, text);
  const noteId = `${attrs.id ?? text.replace(/\W+/g, '-').toLowerCase()}-why`;
  return h('span', { class: 'guarded' },
    h('button', { type: 'button', ...attrs, disabled: true, 'aria-describedby': noteId, onclick: undefined }, text),
    h('span', { class: 'why', id: noteId }, `needs the ${needed} role`));
}

const GOOD = new Set(['CONTINUOUS']);
const WARN = new Set(['INITIAL_SYNC', 'BACKLOG', 'RESYNC', 'PAUSED', 'REPROTECTING', 'FAILED_OVER']);

export function stateTone(state) {
  if (!state) return 'none';
  if (GOOD.has(state)) return 'good';
  if (WARN.has(state)) return 'warn';
  return 'bad';
}

const TONE_MARK = { good: '●', warn: '▲', bad: '■', none: '○' };

/** A stream state as text with a colour and a shape (never colour alone). */
export function stateBadge(state) {
  const tone = stateTone(state);
  return h('span', { class: `badge ${tone}` }, h('span', { 'aria-hidden': 'true' }, TONE_MARK[tone]), ' ', state ?? 'not reported');
}

/**
 * An alert's kind as a badge. `retention-shortened` is a warning: replication and the RPO hold,
 * only the oldest recovery points are gone; every other kind is bad.
 */
const ALERT_TONE = { 'retention-shortened': 'warn' };

export function alertBadge(kind) {
  const tone = ALERT_TONE[kind] ?? 'bad';
  return h('span', { class: `badge ${tone}` }, h('span', { 'aria-hidden': 'true' }, TONE_MARK[tone]), ' ', kind);
}

/** The worst state of a machine's disks (the one an operator must look at). */
export function machineState(m) {
  if (!m.protection) return null;
  const order = ['none', 'good', 'warn', 'bad'];
  let worst = null;
  for (const d of m.disks) {
    if (worst === null || order.indexOf(stateTone(d.state)) > order.indexOf(stateTone(worst))) worst = d.state;
  }
  return worst;
}

/** The machine's RPO now: the largest lag of its disks. */
export function machineLag(m) {
  const lags = m.disks.map((d) => d.lagSeconds).filter((v) => v !== null && v !== undefined);
  return lags.length ? Math.max(...lags) : null;
}

/** RPO against the policy's threshold, in colour and in words. */
export function rpoBadge(lag, threshold) {
  if (lag === null || lag === undefined) return h('span', { class: 'badge none' }, h('span', { 'aria-hidden': 'true' }, '○'), ' no report');
  if (!threshold) return h('span', { class: 'badge none' }, seconds(lag));
  const over = lag > threshold;
  const near = !over && lag > threshold * 0.8;
  const tone = over ? 'bad' : near ? 'warn' : 'good';
  const words = over ? 'over threshold' : near ? 'near threshold' : 'within threshold';
  return h('span', { class: `badge ${tone}` },
    h('span', { 'aria-hidden': 'true' }, TONE_MARK[tone]), ' ',
    `${seconds(lag)} of ${seconds(threshold)} — ${words}`);
}

export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, 'Error: '), err.message ?? String(err),
    err.hint ? h('span', { class: 'hint' }, ` (${err.hint})`) : null);
}

/** Everything the dashboard and machine pages read at once. */
export async function loadFleet(vaultId) {
  const v = `/vaults/${vaultId}`;
  const [machines, policies, alerts, servers] = await Promise.all([
    get(`${v}/machines`), get(`${v}/policies`), get(`${v}/alerts`), get(`${v}/servers`),
  ]);
  return { machines: machines.items, policies: policies.items, alerts: alerts.items, servers: servers.items };
}

/** The name of the one-machine plan through which machine actions run. */
export function machinePlanName(machine) {
  return `${machine.name} (machine)`.slice(0, 128);
}

/** A plan with exactly this machine in one group: the existing one, or a new one. */
export async function machinePlan(vaultId, machine) {
  const plans = (await get(`/vaults/${vaultId}/plans`)).items;
  const found = plans.find((p) => p.groups.length === 1 && p.groups[0].machineIds.length === 1 && p.groups[0].machineIds[0] === machine.id);
  if (found) return found;
  return api('POST', `/vaults/${vaultId}/plans`, {
    name: machinePlanName(machine), bootCheck: true, groups: [{ name: machine.name, machineIds: [machine.id] }],
  });
}

export function jobBadge(state) {
  const tone = state === 'succeeded' ? 'good' : state === 'running' ? 'warn' : 'bad';
  return h('span', { class: `badge ${tone}` }, h('span', { 'aria-hidden': 'true' }, TONE_MARK[tone]), ' ', state);
}

/** Newest first. */
export function byNewest(a, b) {
  return (b.createdAt ?? b.startedAt).localeCompare(a.createdAt ?? a.startedAt);
}
