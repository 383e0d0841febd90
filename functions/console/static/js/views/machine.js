// One machine: protection, disks, history charts, the recovery-point timeline and the actions
// (test failover, failover, cleanup, bookmark), each confirmed and followed live.
import { api, get } from '../api.js';
import { announce, h, replace, replaceIfChanged } from '../dom.js';
import { chartWidth, lineChart, windowToggle } from '../charts.js';
import { confirmAction } from '../confirm.js';
import { ago, axisSeconds, bytes, seconds, time } from '../format.js';
import { byNewest, errorBox, guardedButton, jobBadge, machineLag, machinePlan, rpoBadge, stateBadge } from '../common.js';
import { jobPanel } from './jobs.js';
import { choiceText, pointChoice, pointTimeline, reportedPoints } from '../timeline.js';

const REFRESH_MS = 2000;
let chartWindow = 'hour';

export async function renderMachine(root, ctx) {
  const [machineId] = ctx.params;
  const v = `/vaults/${ctx.vault.id}`;
  let machine = await get(`${v}/machines/${machineId}`);
  const [policies, servers, sites] = await Promise.all([get(`${v}/policies`), get(`${v}/servers`), get(`${v}/sites`)]);
  const site = sites.items.find((s) => s.id === machine.siteId);
  ctx.machineNames = new Map([[machine.id, machine.name]]);
  let selection = { kind: 'latest' };
  let points = [];
  let report = { disks: [], reportedAt: null };

  const protection = h('div');
  const disks = h('div');
  const charts = h('div', { class: 'charts' });
  const timeline = h('div');
  const jobArea = h('div', { id: 'job-area' });
  const history = h('div');
  const actions = h('div', { class: 'actions wrap' });

  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Dashboard'), ' / ', machine.name),
    h('div', { class: 'page-head' }, h('h1', {}, machine.name),
      h('p', { class: 'sub' }, `${machine.hostname} · ${machine.os} · site ${site?.name ?? machine.siteId}`)),
    h('section', { 'aria-labelledby': 'protection-title' }, h('h2', { id: 'protection-title' }, 'Protection'), protection),
    h('section', { 'aria-labelledby': 'disks-title' }, h('h2', { id: 'disks-title' }, 'Disks'), disks),
    h('section', { 'aria-labelledby': 'mcharts-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'mcharts-title' }, 'History'),
        windowToggle(chartWindow, (w) => { chartWindow = w; charts.dataset.renderKey = ''; load(); }, 'Chart window')),
      charts),
    h('section', { 'aria-labelledby': 'points-title' },
      h('h2', { id: 'points-title' }, 'Recovery points'),
      h('p', { class: 'help' }, 'Pick the point to recover to: the points come from the master target, the newest on the right.'),
      timeline),
    h('section', { 'aria-labelledby': 'actions-title' }, h('h2', { id: 'actions-title' }, 'Actions'), actions, jobArea),
    h('section', { 'aria-labelledby': 'mjobs-title' }, h('h2', { id: 'mjobs-title' }, 'Jobs of this machine'), history));

  const policyOf = () => policies.items.find((p) => p.id === machine.protection?.policyId);
  const serverName = (id) => servers.items.find((s) => s.id === id)?.name ?? id;
  const diskName = (diskId) => (machine.disks.length > 1 ? machine.disks.find((d) => d.id === diskId)?.name ?? diskId : null);

  function renderProtection() {
    if (machine.protection) {
      const p = policyOf();
      replace(protection, h('dl', { class: 'facts' },
        h('dt', {}, 'Policy'), h('dd', {}, p ? `${p.name}: RPO threshold ${seconds(p.rpoThresholdSeconds)}, retention ${seconds(p.retentionSeconds)}` : machine.protection.policyId),
        h('dt', {}, 'Process server'), h('dd', {}, serverName(machine.protection.processServerId)),
        h('dt', {}, 'Master target'), h('dd', {}, serverName(machine.protection.masterTargetId)),
        h('dt', {}, 'Since'), h('dd', {}, time(machine.protection.enabledAt))));
      return;
    }
    if (policies.items.length === 0) {
      replace(protection, h('p', {}, 'Not protected. There is no replication policy yet: ', h('a', { href: '#/enroll' }, 'create one under Enrollment'), '.'));
      return;
    }
    const select = h('select', { id: 'policy-select' }, policies.items.map((p) => h('option', { value: p.id }, `${p.name} (RPO ${seconds(p.rpoThresholdSeconds)})`)));
    const enable = async () => {
      const p = policies.items.find((x) => x.id === select.value);
      const ok = await confirmAction({
        title: `Protect ${machine.name}?`,
        body: h('p', {}, `Replication of ${machine.disks.length} disk(s) starts with policy ${p.name}; the least loaded process server and master target are assigned.`),
        confirmLabel: 'Enable protection',
      });
      if (!ok) return;
      try {
        machine = await api('PUT', `${v}/machines/${machine.id}/protection`, { policyId: select.value });
        announce(`${machine.name} is protected`);
        renderProtection();
        renderActions();
        load();
      } catch (err) {
        protection.append(errorBox(err));
      }
    };
    replace(protection,
      h('p', {}, h('span', { class: 'badge none' }, 'not protected'), ' Choose a policy to start replicating this machine.'),
      h('div', { class: 'inline-form' }, h('label', { for: 'policy-select' }, 'Policy'), select,
        guardedButton(ctx.session, 'operator', { class: 'primary', id: 'enable-protection', onclick: enable }, 'Enable protection')));
  }

  function renderActions() {
    const can = machine.protection !== null;
    const note = !can ? h('p', { class: 'muted' }, 'Actions need the machine to be protected.') : null;
    replace(actions,
      guardedButton(ctx.session, 'operator', { class: 'primary', id: 'action-test-failover', disabled: !can, onclick: () => start('test-failover') }, 'Test failover'),
      guardedButton(ctx.session, 'operator', { class: 'secondary', id: 'action-cleanup', disabled: !can, onclick: () => start('cleanup') }, 'Clean up test failover'),
      guardedButton(ctx.session, 'operator', { class: 'danger', id: 'action-failover', disabled: !can, onclick: () => start('failover') }, 'Failover'),
      guardedButton(ctx.session, 'operator', { class: 'secondary', id: 'action-bookmark', disabled: !can, onclick: bookmark }, 'Bookmark'),
      note);
  }

  async function bookmark() {
    const name = h('input', { id: 'bookmark-name', required: true, maxlength: '200', value: `before change ${new Date().toISOString().slice(0, 16).replace('T', ' ')}` });
    const ok = await confirmAction({
      title: `Bookmark ${machine.name}?`,
      body: [
        h('p', {}, `The agent of ${machine.name} tags a named recovery point on each of its ${machine.disks.length} disk(s) now; the bookmark is kept as long as replication keeps points.`),
        h('div', { class: 'field' }, h('label', { for: 'bookmark-name' }, 'Bookmark name'), name),
      ],
      confirmLabel: 'Bookmark',
      focus: name,
    });
    if (!ok) return;
    try {
      const plan = await machinePlan(ctx.vault.id, machine);
      const job = await api('POST', `/vaults/${ctx.vault.id}/jobs`, { kind: 'bookmark', planId: plan.id, name: name.value.trim() });
      announce(`bookmark job ${job.id} started`);
      replace(jobArea, jobPanel(ctx, job, { onEnd: () => { loadJobs(); load(); } }));
      loadJobs();
    } catch (err) {
      replace(jobArea, errorBox(err));
    }
  }

  async function start(kind) {
    const chosen = selection;
    const pointText = choiceText(chosen, points, diskName);
    let testJob = null;
    if (kind === 'cleanup') {
      const jobs = (await get(`/vaults/${ctx.vault.id}/jobs`)).items.filter((j) => j.kind === 'test-failover' && j.state !== 'running' && j.steps.some((s) => s.machineId === machine.id && s.state !== 'pending'));
      const cleaned = new Set((await get(`/vaults/${ctx.vault.id}/jobs`)).items.filter((j) => j.kind === 'cleanup' && j.state === 'succeeded').map((j) => j.testFailoverJobId));
      testJob = jobs.sort(byNewest).find((j) => !cleaned.has(j.id));
      if (!testJob) {
        await confirmAction({ title: 'Nothing to clean up', body: h('p', {}, `No finished test failover of ${machine.name} is waiting for cleanup.`), confirmLabel: 'OK' });
        return;
      }
    }
    const titles = { 'test-failover': `Test failover of ${machine.name}?`, failover: `Fail over ${machine.name}?`, cleanup: `Clean up the test failover of ${machine.name}?` };
    const bodies = {
      'test-failover': [h('p', {}, `${machine.name} is brought up isolated on the master target at ${pointText}, from a scratch copy; replication goes on.`)],
      failover: [h('p', { class: 'warning' }, `This is a real failover: ${machine.name} is brought up at ${pointText} on the recovery site. Do this only when the primary is lost or planned down.`)],
      cleanup: [h('p', {}, `Stops what test failover ${testJob?.id} brought up and drops its scratch copies. Replication is untouched.`)],
    };
    const body = [...bodies[kind]];
    const ok = await confirmAction({ title: titles[kind], body, confirmLabel: { 'test-failover': 'Start test failover', failover: 'Fail over', cleanup: 'Clean up' }[kind], danger: kind === 'failover' });
    if (!ok) return;
    try {
      const plan = await machinePlan(ctx.vault.id, machine);
      const point = kind === 'cleanup' ? undefined : pointChoice(chosen, points);
      const job = await api('POST', `/vaults/${ctx.vault.id}/jobs`, { kind, planId: plan.id, ...(testJob ? { testFailoverJobId: testJob.id } : {}), ...(point ? { point } : {}) });
      announce(`${kind} job ${job.id} started`);
      replace(jobArea, jobPanel(ctx, job, { picked: kind === 'cleanup' ? null : pointText, onEnd: () => loadJobs() }));
      loadJobs();
    } catch (err) {
      replace(jobArea, errorBox(err));
    }
  }

  function renderTimeline(nowMs) {
    if (points.length === 0 && !report.disks.some((d) => d.newest)) {
      replaceIfChanged(timeline, 'empty', () => h('p', { class: 'muted' }, 'The master target has reported no recovery point of this machine yet.'));
      return;
    }
    if (selection.kind === 'point' && !points.some((p) => p.key === selection.key)) selection = { kind: 'latest' };
    const key = JSON.stringify([report, selection, Math.floor(nowMs / 10_000)]);
    replaceIfChanged(timeline, key, () => pointTimeline({ report, points, selection, onPick: pick, diskName, nowMs }));
  }

  function pick(next) {
    const focusId = next.kind === 'time' && document.activeElement?.id === 'point-time-value' ? 'point-time-value' : null;
    selection = next;
    announce(`Picked ${choiceText(next, points, diskName)}`);
    timeline.dataset.renderKey = '';
    renderTimeline(Date.now());
    const id = focusId ?? (next.kind === 'latest' ? 'point-latest' : next.kind === 'time' ? 'point-time' : `point-${next.key.replace(/\W/g, '-')}`);
    document.getElementById(id)?.focus();
  }

  async function loadJobs() {
    const jobs = (await get(`/vaults/${ctx.vault.id}/jobs`)).items.filter((j) => j.steps.some((s) => s.machineId === machine.id)).sort(byNewest);
    replaceIfChanged(history, JSON.stringify(jobs.map((j) => [j.id, j.state, j.progressPercent])), () =>
      jobs.length === 0 ? h('p', { class: 'muted' }, 'No job has run for this machine.')
        : h('table', { class: 'data responsive' },
          h('thead', {}, h('tr', {}, ['Job', 'Kind', 'State', 'Started', 'Point used'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, jobs.slice(0, 20).map((j) => {
            const step = j.steps.find((s) => s.machineId === machine.id);
            return h('tr', {},
              h('th', { scope: 'row', 'data-label': 'Job' }, h('a', { href: `#/jobs/${j.id}` }, j.id)),
              h('td', { 'data-label': 'Kind' }, j.kind), h('td', { 'data-label': 'State' }, jobBadge(j.state)),
              h('td', { 'data-label': 'Started' }, time(j.createdAt)),
              h('td', { 'data-label': 'Point used' }, step?.point ? `${time(step.point.time)}${step.point.seq !== undefined ? ` (seq ${step.point.seq})` : ''}` : '—'));
          }))));
  }

  const load = async () => {
    let hist;
    try {
      [machine, hist, report] = await Promise.all([get(`${v}/machines/${machineId}`), get(`${v}/machines/${machineId}/history`), get(`${v}/machines/${machineId}/recovery-points`)]);
    } catch (err) {
      replace(disks, errorBox(err));
      return;
    }
    const nowMs = Date.now();
    const threshold = policyOf()?.rpoThresholdSeconds;
    replaceIfChanged(disks, JSON.stringify([machine.disks, Math.floor(nowMs / 10_000)]), () =>
      h('table', { class: 'data responsive', id: 'disks-table' },
        h('thead', {}, h('tr', {}, ['Disk', 'Size', 'State', 'RPO', 'Backlog', 'Latest point', 'Reported'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, machine.disks.map((d) => h('tr', {},
          h('th', { scope: 'row', 'data-label': 'Disk' }, d.name),
          h('td', { 'data-label': 'Size' }, bytes(d.sizeBytes)),
          h('td', { 'data-label': 'State', class: 'state-cell' }, machine.protection ? stateBadge(d.state) : h('span', { class: 'badge none' }, 'not protected')),
          h('td', { 'data-label': 'RPO' }, rpoBadge(d.lagSeconds, threshold)),
          h('td', { 'data-label': 'Backlog' }, bytes(d.backlogBytes)),
          h('td', { 'data-label': 'Latest point' }, d.latestPoint ? `${time(d.latestPoint.time)} · ${d.latestPoint.kind ?? 'crash-consistent'}` : '—'),
          h('td', { 'data-label': 'Reported' }, ago(d.reportedAt, nowMs)))))));

    points = reportedPoints(report);
    renderTimeline(nowMs);

    const windowMs = chartWindow === 'hour' ? 3600_000 : 86400_000;
    const bucketMs = chartWindow === 'hour' ? 10_000 : 300_000;
    const samples = hist[chartWindow];
    const label = chartWindow === 'hour' ? 'last hour' : 'last day';
    replaceIfChanged(charts, JSON.stringify([chartWindow, samples, Math.floor(nowMs / 30_000)]), () => [
      lineChart({
        title: `RPO of ${machine.name}, ${label}`,
        series: [{ name: 'lag', cls: 's1', points: samples.map((s) => ({ t: Date.parse(s.t), v: s.lagSeconds })) }],
        fromMs: nowMs - windowMs, toMs: nowMs, format: axisSeconds, width: chartWidth(charts),
        threshold: threshold ? { value: threshold, label: `threshold ${seconds(threshold)}` } : undefined,
        summary: samples.length ? `Now ${seconds(machineLag(machine))}, highest ${seconds(Math.max(...samples.map((s) => s.lagSeconds)))}.` : 'No reports yet.',
      }),
      lineChart({
        title: `Throughput: changes applied per minute, ${label}`,
        series: [{ name: 'changes per minute', cls: 's2', points: samples.map((s) => ({ t: Date.parse(s.t), v: (s.changes * 60_000) / bucketMs })) }],
        fromMs: nowMs - windowMs, toMs: nowMs, width: chartWidth(charts), format: (x) => String(Math.round(x)),
        summary: `${samples.reduce((a, s) => a + s.changes, 0)} changes applied in the ${label}.`,
      }),
    ]);
    if (!protection.hasChildNodes() || (machine.protection && !protection.querySelector('dl'))) {
      renderProtection();
      renderActions();
    }
  };

  renderProtection();
  renderActions();
  await load();
  await loadJobs();
  ctx.every(REFRESH_MS, load);
  ctx.every(REFRESH_MS * 2, loadJobs);
}
