// One machine: protection, disks, history charts, the recovery-point timeline and the actions
// (test failover, failover, cleanup, bookmark), each confirmed and followed live.
import { api, get } from '../api.js';
import { announce, h, replace, replaceIfChanged } from '../dom.js';
import { chartWidth, lineChart, windowToggle } from '../charts.js';
import { confirmAction } from '../confirm.js';
import { ago, axisSeconds, bytes, POINT_KINDS, seconds, time } from '../format.js';
import { byNewest, errorBox, guardedButton, jobBadge, machineLag, machinePlan, rpoBadge, stateBadge } from '../common.js';
import { jobPanel } from './jobs.js';

const REFRESH_MS = 2000;
let chartWindow = 'hour';

export async function renderMachine(root, ctx) {
  const [machineId] = ctx.params;
  const v = `/vaults/${ctx.vault.id}`;
  let machine = await get(`${v}/machines/${machineId}`);
  const [policies, servers, sites] = await Promise.all([get(`${v}/policies`), get(`${v}/servers`), get(`${v}/sites`)]);
  const site = sites.items.find((s) => s.id === machine.siteId);
  ctx.machineNames = new Map([[machine.id, machine.name]]);
  let selectedKey = null;
  let points = [];

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
      h('p', { class: 'help' }, 'Pick the point to recover to. Points come from what the master target reports; the newest is on the right.'),
      timeline),
    h('section', { 'aria-labelledby': 'actions-title' }, h('h2', { id: 'actions-title' }, 'Actions'), actions, jobArea),
    h('section', { 'aria-labelledby': 'mjobs-title' }, h('h2', { id: 'mjobs-title' }, 'Jobs of this machine'), history));

  const policyOf = () => policies.items.find((p) => p.id === machine.protection?.policyId);
  const serverName = (id) => servers.items.find((s) => s.id === id)?.name ?? id;
  const selected = () => points.find((p) => p.key === selectedKey) ?? null;

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
      h('span', { class: 'guarded' },
        h('button', { type: 'button', class: 'secondary', disabled: true, 'aria-describedby': 'bookmark-why' }, 'Bookmark'),
        h('span', { class: 'why', id: 'bookmark-why' }, 'not available: the site protocol has no bookmark command yet')),
      note);
  }

  async function start(kind) {
    const point = selected();
    const latest = points[points.length - 1];
    const pointText = point ? `${time(point.time)} (${POINT_KINDS[point.kind]?.label ?? point.kind}${point.seq !== null ? `, seq ${point.seq}` : ''})` : 'the latest point';
    const olderPicked = point && latest && point.key !== latest.key;
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
    if (kind !== 'cleanup' && olderPicked) {
      body.push(h('p', { class: 'note' }, 'The control plane starts jobs at the latest point the master target has; starting at an older point is not in its API yet, so the job will use the latest point.'));
    }
    const ok = await confirmAction({ title: titles[kind], body, confirmLabel: { 'test-failover': 'Start test failover', failover: 'Fail over', cleanup: 'Clean up' }[kind], danger: kind === 'failover' });
    if (!ok) return;
    try {
      const plan = await machinePlan(ctx.vault.id, machine);
      const job = await api('POST', `/vaults/${ctx.vault.id}/jobs`, { kind, planId: plan.id, ...(testJob ? { testFailoverJobId: testJob.id } : {}) });
      announce(`${kind} job ${job.id} started`);
      replace(jobArea, jobPanel(ctx, job, { picked: kind === 'cleanup' ? null : point, onEnd: () => loadJobs() }));
      loadJobs();
    } catch (err) {
      replace(jobArea, errorBox(err));
    }
  }

  function renderTimeline(nowMs) {
    if (points.length === 0) {
      replaceIfChanged(timeline, 'empty', () => h('p', { class: 'muted' }, 'No recovery point reported yet.'));
      return;
    }
    if (!selectedKey || !points.some((p) => p.key === selectedKey)) selectedKey = points[points.length - 1].key;
    const key = JSON.stringify([points.map((p) => p.key), selectedKey, Math.floor(nowMs / 10_000)]);
    replaceIfChanged(timeline, key, () => {
      const first = Date.parse(points[0].time);
      const last = Date.parse(points[points.length - 1].time);
      const span = Math.max(1, last - first);
      const strip = h('div', { class: 'timeline-strip', 'aria-hidden': 'true' },
        points.map((p) => {
          const left = points.length === 1 ? 100 : ((Date.parse(p.time) - first) / span) * 100;
          const marker = h('button', {
            type: 'button', tabindex: '-1', class: `marker ${p.kind}${p.key === selectedKey ? ' selected' : ''}`,
            title: `${time(p.time)} · ${POINT_KINDS[p.kind]?.label ?? p.kind}`, onclick: () => pick(p.key),
          });
          marker.style.left = `${left}%`;
          return marker;
        }));
      const legend = h('ul', { class: 'legend' }, ['crash-consistent', 'app-consistent', 'bookmark'].map((k) =>
        h('li', {}, h('span', { class: `marker-key ${k}`, 'aria-hidden': 'true' }), POINT_KINDS[k].label)));
      const list = h('fieldset', { class: 'points' },
        h('legend', {}, 'Recovery point to use'),
        h('ol', {}, [...points].reverse().map((p) => {
          const id = `point-${p.key.replace(/\W/g, '-')}`;
          const diskName = machine.disks.find((d) => d.id === p.diskId)?.name;
          return h('li', {},
            h('input', { type: 'radio', name: 'point', id, value: p.key, checked: p.key === selectedKey, onchange: () => pick(p.key) }),
            h('label', { for: id, class: `point ${p.kind}` },
              h('span', { class: `marker-key ${p.kind}`, 'aria-hidden': 'true' }),
              h('span', { class: 'point-time' }, time(p.time)),
              h('span', { class: 'point-kind' }, POINT_KINDS[p.kind]?.label ?? p.kind),
              h('span', { class: 'muted' }, [p.seq !== null ? `seq ${p.seq}` : null, machine.disks.length > 1 && diskName ? diskName : null, ago(p.time, nowMs)].filter(Boolean).join(' · ')),
              p.key === points[points.length - 1].key ? h('span', { class: 'badge good' }, 'latest') : null));
        })));
      return [strip, legend, list];
    });
  }

  function pick(key) {
    selectedKey = key;
    const p = selected();
    announce(`Picked the point of ${time(p.time)}, ${POINT_KINDS[p.kind]?.label ?? p.kind}`);
    timeline.dataset.renderKey = '';
    renderTimeline(Date.now());
    document.querySelector(`input[name="point"][value="${CSS.escape(key)}"]`)?.focus();
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
      [machine, hist] = await Promise.all([get(`${v}/machines/${machineId}`), get(`${v}/machines/${machineId}/history`)]);
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

    const seen = new Map();
    const add = (diskId, p) => {
      if (!p) return;
      const key = `${diskId}|${p.time}|${p.seq ?? ''}`;
      if (!seen.has(key)) seen.set(key, { key, diskId, time: p.time, seq: p.seq ?? null, kind: p.kind ?? 'crash-consistent' });
    };
    for (const p of hist.points) add(p.diskId, p);
    for (const d of machine.disks) add(d.id, d.latestPoint);
    points = [...seen.values()].sort((a, b) => a.time.localeCompare(b.time));
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
