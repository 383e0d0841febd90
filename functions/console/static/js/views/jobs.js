// Jobs and drills: the list, one job followed live, and drill reports with their evidence.
import { get } from '../api.js';
import { h, replace, replaceIfChanged } from '../dom.js';
import { ago, POINT_KINDS, seconds, time } from '../format.js';
import { byNewest, jobBadge } from '../common.js';

const LIVE_MS = 1000;

/** A job's progress, steps and evidence, polled while it runs. `picked` says the point the operator chose. */
export function jobPanel(ctx, job, { picked = null, onEnd = null } = {}) {
  const panel = h('section', { class: 'job-panel card', 'aria-labelledby': `job-${job.id}-title`, 'data-job': job.id });
  const body = h('div', { 'aria-live': 'polite' });
  panel.append(h('h3', { id: `job-${job.id}-title` }, `${job.kind} job `, h('a', { href: `#/jobs/${job.id}` }, job.id)), body);
  let last = '';
  const draw = (j) => {
    const key = JSON.stringify([j.state, j.progressPercent, j.steps, j.events.length]);
    if (key === last) return;
    last = key;
    replace(body, jobSummary(j, ctx, picked));
  };
  draw(job);
  const timer = setInterval(async () => {
    if (!panel.isConnected) { clearInterval(timer); return; }
    try {
      const j = await get(`/vaults/${ctx.vault.id}/jobs/${job.id}`);
      draw(j);
      if (j.state !== 'running') {
        clearInterval(timer);
        onEnd?.(j);
      }
    } catch { /* the next tick tries again */ }
  }, LIVE_MS);
  return panel;
}

function pointText(p) {
  if (!p) return '—';
  return `${time(p.time)} · ${POINT_KINDS[p.kind]?.label ?? p.kind ?? 'crash-consistent'}${p.seq !== undefined && p.seq !== null ? ` · seq ${p.seq}` : ''}`;
}

function askedText(p) {
  return 'time' in p ? `the newest kept point at or before ${time(p.time)}` : `point ${p.id}`;
}

function jobSummary(j, ctx, picked) {
  const names = ctx.machineNames ?? new Map();
  return [
    h('p', { class: 'job-state' }, jobBadge(j.state), ' ',
      h('label', { class: 'progress-label' }, h('span', { class: 'visually-hidden' }, 'Progress'),
        h('progress', { max: '100', value: String(j.progressPercent) }, `${j.progressPercent}%`)),
      ` ${j.progressPercent}%`, j.error ? h('span', { class: 'error-text' }, ` — ${j.error}`) : null),
    picked ? h('p', { class: 'muted' }, `Point picked: ${picked}`) : j.point && j.point !== 'latest' ? h('p', { class: 'muted' }, `Point asked for: ${askedText(j.point)}`) : null,
    j.bookmarkName ? h('p', { class: 'muted' }, `Bookmark name: “${j.bookmarkName}”`) : null,
    j.bootConsolePattern ? h('p', { class: 'muted' }, `Boot check waits for the console to show “${j.bootConsolePattern}”`) : null,
    h('table', { class: 'data responsive' },
      h('thead', {}, h('tr', {}, ['Machine', 'Group', 'Step', 'Point used', 'Checks'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, j.steps.map((s) => h('tr', {},
        h('th', { scope: 'row', 'data-label': 'Machine' }, h('a', { href: `#/machines/${s.machineId}` }, names.get(s.machineId) ?? s.machineId)),
        h('td', { 'data-label': 'Group' }, String(s.groupIndex + 1)),
        h('td', { 'data-label': 'Step', class: 'step-state' }, s.state, s.error ? ` — ${s.error}` : ''),
        h('td', { 'data-label': 'Point used' }, pointText(s.point)),
        h('td', { 'data-label': 'Checks' }, s.checks.length ? s.checks.map((c) => h('span', { class: `badge ${c.passed ? 'good' : 'bad'}` }, `${c.name}: ${c.passed ? 'passed' : 'failed'}`)) : '—'))))),
    j.steps.some((s) => s.checks.some((c) => c.detail)) ? h('div', {}, j.steps.filter((s) => s.checks.length).map((s) =>
      h('details', { class: 'evidence checks' }, h('summary', {}, `Checks of ${names.get(s.machineId) ?? s.machineId}`),
        h('ul', {}, s.checks.map((c) => h('li', {}, `${c.name}: ${c.passed ? 'passed' : 'failed'}${c.detail ? ` — ${c.detail}` : ''}`)))))) : null,
    j.steps.some((s) => s.consoleLog) ? h('div', {}, j.steps.filter((s) => s.consoleLog).map((s) =>
      h('details', { class: 'evidence' }, h('summary', {}, `Console log of ${names.get(s.machineId) ?? s.machineId} (evidence)`), h('pre', {}, s.consoleLog)))) : null,
    h('details', { class: 'events' }, h('summary', {}, `Events (${j.events.length})`),
      h('ol', { class: 'event-log' }, j.events.map((e) => h('li', {}, h('time', { datetime: e.at }, time(e.at)), ' ', h('code', {}, e.type), ' ', e.message)))),
  ];
}

export async function renderJob(root, ctx) {
  const [jobId] = ctx.params;
  const [job, machines, plans] = await Promise.all([
    get(`/vaults/${ctx.vault.id}/jobs/${jobId}`), get(`/vaults/${ctx.vault.id}/machines`), get(`/vaults/${ctx.vault.id}/plans`),
  ]);
  ctx.machineNames = new Map(machines.items.map((m) => [m.id, m.name]));
  const plan = plans.items.find((p) => p.id === job.planId);
  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, 'Jobs and drills'), ' / ', job.id),
    h('div', { class: 'page-head' }, h('h1', {}, `${job.kind} of ${plan?.name ?? job.planId}`),
      h('p', { class: 'sub' }, `started ${time(job.createdAt)} by ${job.createdBy}`, job.finishedAt ? `, ended ${time(job.finishedAt)}` : '',
        job.drillId ? ' · part of a scheduled drill' : '')),
    jobPanel(ctx, job));
}

export async function renderJobs(root, ctx) {
  const v = `/vaults/${ctx.vault.id}`;
  const jobsBox = h('div');
  const drillsBox = h('div');
  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Jobs and drills')),
    h('section', { 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Jobs'), jobsBox),
    h('section', { 'aria-labelledby': 'drills-title' }, h('h2', { id: 'drills-title' }, 'Drill reports'), drillsBox));
  const load = async () => {
    const [jobs, plans, drills, machines] = await Promise.all([get(`${v}/jobs`), get(`${v}/plans`), get(`${v}/drills`), get(`${v}/machines`)]);
    const machineNames = new Map(machines.items.map((m) => [m.id, m.name]));
    const planName = new Map(plans.items.map((p) => [p.id, p.name]));
    const sorted = jobs.items.sort(byNewest);
    replaceIfChanged(jobsBox, JSON.stringify(sorted.map((j) => [j.id, j.state, j.progressPercent])), () =>
      sorted.length === 0 ? h('p', { class: 'muted' }, 'No job has run yet.')
        : h('table', { class: 'data responsive', id: 'jobs-table' },
          h('thead', {}, h('tr', {}, ['Job', 'Kind', 'Plan', 'State', 'Progress', 'Started', 'By'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, sorted.map((j) => h('tr', {},
            h('th', { scope: 'row', 'data-label': 'Job' }, h('a', { href: `#/jobs/${j.id}` }, j.id)),
            h('td', { 'data-label': 'Kind' }, j.kind),
            h('td', { 'data-label': 'Plan' }, h('a', { href: `#/plans/${j.planId}` }, planName.get(j.planId) ?? j.planId)),
            h('td', { 'data-label': 'State' }, jobBadge(j.state)),
            h('td', { 'data-label': 'Progress' }, `${j.progressPercent}%`),
            h('td', { 'data-label': 'Started' }, ago(j.createdAt)),
            h('td', { 'data-label': 'By' }, j.createdBy))))));
    const reports = [];
    for (const d of drills.items) reports.push(...(await get(`${v}/drills/${d.id}/reports`)).items);
    replaceIfChanged(drillsBox, JSON.stringify([drills.items, reports.map((r) => r.id)]), () =>
      [drills.items.length === 0 ? h('p', { class: 'muted' }, 'No drill is scheduled. Schedule one on a recovery plan.')
        : h('ul', { class: 'plain' }, drills.items.map((d) => h('li', {},
          h('a', { href: `#/plans/${d.planId}` }, planName.get(d.planId) ?? d.planId), `: every ${seconds(d.intervalSeconds)}, next ${time(d.nextRunAt)}, ${d.enabled ? d.phase : 'disabled'}`))),
      drillReports(reports.sort(byNewest), planName, machineNames)]);
  };
  await load();
  ctx.every(3000, load);
}

/** Drill reports with the evidence each kept. */
export function drillReports(reports, planName = new Map(), machineNames = new Map()) {
  if (reports.length === 0) return h('p', { class: 'muted' }, 'No drill report yet.');
  return h('ul', { class: 'reports' }, reports.map((r) => h('li', { class: 'card' },
    h('p', {}, h('span', { class: `badge ${r.outcome === 'passed' ? 'good' : 'bad'}` }, r.outcome), ' ',
      h('strong', {}, planName.get(r.planId) ?? r.planId), ` drill of ${time(r.startedAt)}`,
      ` · checks ${r.checksPassed}/${r.checksTotal}`, r.timeToReadySeconds !== null ? ` · ready in ${seconds(r.timeToReadySeconds)}` : '',
      ` · ${r.cleanedUp ? 'cleaned up' : 'not cleaned up'}`, r.error ? h('span', { class: 'error-text' }, ` — ${r.error}`) : null),
    r.bootConsolePattern ? h('p', { class: 'muted boot-pattern' }, `Boot check: the console had to show “${r.bootConsolePattern}”`) : null,
    r.machines.map((m) => h('details', { class: 'evidence' },
      h('summary', {}, `${machineNames.get(m.machineId) ?? m.machineId}: ${m.ready ? 'ready' : 'not ready'}${m.pointAgeSeconds !== null ? `, point ${seconds(m.pointAgeSeconds)} old` : ''}`),
      m.checks.length ? h('ul', {}, m.checks.map((c) => h('li', {}, `${c.name}: ${c.passed ? 'passed' : 'failed'}${c.detail ? ` (${c.detail})` : ''}`))) : null,
      m.consoleLog ? h('pre', {}, m.consoleLog) : h('p', { class: 'muted' }, 'No console log.'))))));
}
