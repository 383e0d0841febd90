// Recovery plans: the list, one plan with its jobs and drills, and the editor of ordered groups.
import { api, get } from '../api.js';
import { announce, h, replace, replaceIfChanged, uid } from '../dom.js';
import { confirmAction } from '../confirm.js';
import { seconds, time } from '../format.js';
import { byNewest, errorBox, guardedButton, jobBadge } from '../common.js';
import { drillReports, jobPanel } from './jobs.js';

export async function renderPlans(root, ctx) {
  const v = `/vaults/${ctx.vault.id}`;
  const [plans, machines, jobs] = await Promise.all([get(`${v}/plans`), get(`${v}/machines`), get(`${v}/jobs`)]);
  const names = new Map(machines.items.map((m) => [m.id, m.name]));
  const lastJob = (planId) => jobs.items.filter((j) => j.planId === planId).sort(byNewest)[0];
  replace(root,
    h('div', { class: 'page-head row' }, h('h1', {}, 'Recovery plans'),
      ctx.can('operator') ? h('a', { class: 'button primary', href: '#/plans/new', id: 'new-plan' }, 'New plan') : null),
    h('p', { class: 'help' }, 'A plan brings machines up in ordered groups: each group starts when the one before it is ready.'),
    plans.items.length === 0 ? h('p', { class: 'muted' }, 'No plan yet.')
      : h('table', { class: 'data responsive', id: 'plans-table' },
        h('thead', {}, h('tr', {}, ['Plan', 'Groups', 'Boot check', 'Last job'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, plans.items.map((p) => {
          const last = lastJob(p.id);
          return h('tr', {},
            h('th', { scope: 'row', 'data-label': 'Plan' }, h('a', { href: `#/plans/${p.id}` }, p.name)),
            h('td', { 'data-label': 'Groups' }, h('ol', { class: 'groups-inline' }, p.groups.map((g) => h('li', {}, `${g.name}: ${g.machineIds.map((id) => names.get(id) ?? id).join(', ')}`)))),
            h('td', { 'data-label': 'Boot check' }, p.bootCheck ? (p.bootConsolePattern ? `yes: “${p.bootConsolePattern}”` : 'yes') : 'no'),
            h('td', { 'data-label': 'Last job' }, last ? [jobBadge(last.state), ` ${last.kind}, ${time(last.createdAt)}`] : '—'));
        }))));
}

export async function renderPlan(root, ctx) {
  const [planId] = ctx.params;
  const v = `/vaults/${ctx.vault.id}`;
  const [plan, machines] = await Promise.all([get(`${v}/plans/${planId}`), get(`${v}/machines`)]);
  ctx.machineNames = new Map(machines.items.map((m) => [m.id, m.name]));
  const jobArea = h('div');
  const history = h('div');
  const drillsBox = h('div');

  const run = async (kind) => {
    let testFailoverJobId;
    if (kind === 'cleanup') {
      const jobs = (await get(`${v}/jobs`)).items;
      const cleaned = new Set(jobs.filter((j) => j.kind === 'cleanup' && j.state === 'succeeded').map((j) => j.testFailoverJobId));
      testFailoverJobId = jobs.filter((j) => j.planId === plan.id && j.kind === 'test-failover' && j.state !== 'running' && !cleaned.has(j.id)).sort(byNewest)[0]?.id;
      if (!testFailoverJobId) {
        await confirmAction({ title: 'Nothing to clean up', body: h('p', {}, 'No finished test failover of this plan is waiting for cleanup.'), confirmLabel: 'OK' });
        return;
      }
    }
    const count = plan.groups.reduce((n, g) => n + g.machineIds.length, 0);
    const text = {
      'test-failover': `Bring the plan's ${count} machine(s) up isolated on the recovery site, group by group, at the latest point${plan.bootCheck ? ', and check that each boots' : ''}. Replication goes on.`,
      failover: `Real failover of ${count} machine(s), group by group, at the latest point. Do this only when the primary site is lost or planned down.`,
      cleanup: `Tear down what test failover ${testFailoverJobId} brought up.`,
    }[kind];
    const ok = await confirmAction({
      title: { 'test-failover': `Test failover of ${plan.name}?`, failover: `Fail over ${plan.name}?`, cleanup: `Clean up ${plan.name}?` }[kind],
      body: h('p', { class: kind === 'failover' ? 'warning' : undefined }, text),
      confirmLabel: { 'test-failover': 'Start test failover', failover: 'Fail over', cleanup: 'Clean up' }[kind],
      danger: kind === 'failover',
    });
    if (!ok) return;
    try {
      const job = await api('POST', `${v}/jobs`, { kind, planId: plan.id, ...(testFailoverJobId ? { testFailoverJobId } : {}) });
      announce(`${kind} job ${job.id} started`);
      replace(jobArea, jobPanel(ctx, job, { onEnd: () => loadHistory() }));
      loadHistory();
    } catch (err) {
      replace(jobArea, errorBox(err));
    }
  };

  const interval = h('select', { id: 'drill-interval' }, [['86400', 'every day'], ['604800', 'every week'], ['2592000', 'every 30 days']].map(([value, text]) => h('option', { value }, text)));
  const schedule = async () => {
    const ok = await confirmAction({ title: `Schedule drills of ${plan.name}?`, body: h('p', {}, `A test failover, its cleanup and a report, ${interval.selectedOptions[0].textContent}, starting now.`), confirmLabel: 'Schedule' });
    if (!ok) return;
    try {
      await api('POST', `${v}/drills`, { planId: plan.id, intervalSeconds: Number(interval.value) });
      announce('drill scheduled');
      loadHistory();
    } catch (err) {
      drillsBox.append(errorBox(err));
    }
  };

  const loadHistory = async () => {
    const [jobs, drills] = await Promise.all([get(`${v}/jobs`), get(`${v}/drills`)]);
    const mine = jobs.items.filter((j) => j.planId === plan.id).sort(byNewest);
    replaceIfChanged(history, JSON.stringify(mine.map((j) => [j.id, j.state, j.progressPercent])), () =>
      mine.length === 0 ? h('p', { class: 'muted' }, 'No job has run for this plan.')
        : h('ul', { class: 'plain' }, mine.map((j) => h('li', {}, jobBadge(j.state), ' ', h('a', { href: `#/jobs/${j.id}` }, `${j.kind} ${j.id}`), ` · ${time(j.createdAt)} by ${j.createdBy}${j.drillId ? ' (drill)' : ''}`))));
    const planDrills = drills.items.filter((d) => d.planId === plan.id);
    const reports = [];
    for (const d of planDrills) reports.push(...(await get(`${v}/drills/${d.id}/reports`)).items);
    replaceIfChanged(drillsBox, JSON.stringify([planDrills, reports.map((r) => r.id)]), () => [
      planDrills.length ? h('ul', { class: 'plain' }, planDrills.map((d) => h('li', {}, `Every ${seconds(d.intervalSeconds)}, next ${time(d.nextRunAt)} (${d.enabled ? d.phase : 'disabled'})`))) : h('p', { class: 'muted' }, 'No drill scheduled.'),
      drillReports(reports.sort(byNewest), new Map([[plan.id, plan.name]]), ctx.machineNames),
    ]);
  };

  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/plans' }, 'Recovery plans'), ' / ', plan.name),
    h('div', { class: 'page-head row' }, h('h1', {}, plan.name),
      ctx.can('operator') ? h('a', { class: 'button secondary', href: `#/plans/${plan.id}/edit` }, 'Edit plan') : null),
    h('section', { 'aria-labelledby': 'groups-title' }, h('h2', { id: 'groups-title' }, 'Groups, in order'),
      h('ol', { class: 'group-list' }, plan.groups.map((g) => h('li', { class: 'card' },
        h('strong', {}, g.name), ': ', g.machineIds.map((id) => ctx.machineNames.get(id) ?? id).join(', '),
        g.preActions.length ? h('span', { class: 'muted block' }, `before: ${g.preActions.map((a) => a.name).join(', ')}`) : null,
        g.postActions.length ? h('span', { class: 'muted block' }, `after: ${g.postActions.map((a) => a.name).join(', ')}`) : null))),
      h('p', { id: 'plan-boot-check' }, `Boot check: ${plan.bootCheck ? `each machine is booted and its console must show ${plan.bootConsolePattern ? `“${plan.bootConsolePattern}”` : 'what the master target is set to wait for'}` : 'off'}`)),
    h('section', { 'aria-labelledby': 'run-title' }, h('h2', { id: 'run-title' }, 'Run'),
      h('div', { class: 'actions wrap' },
        guardedButton(ctx.session, 'operator', { class: 'primary', id: 'plan-test-failover', onclick: () => run('test-failover') }, 'Test failover'),
        guardedButton(ctx.session, 'operator', { class: 'secondary', id: 'plan-cleanup', onclick: () => run('cleanup') }, 'Clean up test failover'),
        guardedButton(ctx.session, 'operator', { class: 'danger', id: 'plan-failover', onclick: () => run('failover') }, 'Failover')),
      jobArea),
    h('section', { 'aria-labelledby': 'phistory-title' }, h('h2', { id: 'phistory-title' }, 'Job history'), history),
    h('section', { 'aria-labelledby': 'pdrills-title' }, h('h2', { id: 'pdrills-title' }, 'Drills'),
      ctx.can('operator') ? h('div', { class: 'inline-form' }, h('label', { for: 'drill-interval' }, 'Schedule a drill'), interval,
        h('button', { type: 'button', class: 'secondary', onclick: schedule }, 'Schedule')) : null,
      drillsBox));
  await loadHistory();
  ctx.every(3000, loadHistory);
}

/** Create (`#/plans/new`) or edit (`#/plans/<id>/edit`) a plan: a name and ordered groups of machines. */
export async function renderPlanEditor(root, ctx) {
  const [planId] = ctx.params;
  const v = `/vaults/${ctx.vault.id}`;
  const machines = (await get(`${v}/machines`)).items;
  const existing = planId ? await get(`${v}/plans/${planId}`) : null;
  if (!ctx.can('operator')) {
    replace(root, h('h1', {}, existing ? `Edit ${existing.name}` : 'New recovery plan'), h('p', {}, `Your role, ${ctx.session.role}, cannot change plans.`));
    return;
  }
  const groups = existing ? existing.groups.map((g) => ({ ...g, machineIds: [...g.machineIds] })) : [{ name: 'group 1', machineIds: [], preActions: [], postActions: [] }];
  const name = h('input', { id: 'plan-name', required: true, maxlength: '128', value: existing?.name ?? '' });
  const bootCheck = h('input', { id: 'plan-boot', type: 'checkbox', checked: existing?.bootCheck ?? true });
  const bootPattern = h('input', { id: 'plan-boot-pattern', maxlength: '200', value: existing?.bootConsolePattern ?? '', 'aria-describedby': 'plan-boot-pattern-help' });
  const groupsBox = h('div');
  const error = h('div');

  const drawGroups = (focusId) => {
    replace(groupsBox, h('ol', { class: 'group-editor' }, groups.map((g, i) => {
      const nameId = uid('group-name');
      return h('li', { class: 'card' }, h('fieldset', {},
        h('legend', {}, `Group ${i + 1}`),
        h('label', { for: nameId }, 'Name'),
        h('input', { id: nameId, value: g.name, required: true, maxlength: '128', oninput: (e) => { g.name = e.target.value; } }),
        h('fieldset', { class: 'machines-pick' }, h('legend', {}, 'Machines'),
          machines.length === 0 ? h('p', { class: 'muted' }, 'No machine enrolled.') : machines.map((m) => {
            const id = `g${i}-${m.id}`;
            const elsewhere = groups.findIndex((x, j) => j !== i && x.machineIds.includes(m.id));
            return h('div', { class: 'check' },
              h('input', {
                type: 'checkbox', id, checked: g.machineIds.includes(m.id), disabled: elsewhere >= 0,
                onchange: (e) => {
                  g.machineIds = e.target.checked ? [...g.machineIds, m.id] : g.machineIds.filter((x) => x !== m.id);
                  drawGroups(id);
                },
              }),
              h('label', { for: id }, m.name, m.protection ? '' : ' (not protected)', elsewhere >= 0 ? ` — in group ${elsewhere + 1}` : ''));
          })),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary small', id: `up-${i}`, disabled: i === 0, onclick: () => { [groups[i - 1], groups[i]] = [groups[i], groups[i - 1]]; drawGroups(`up-${i - 1}`); } }, 'Move up'),
          h('button', { type: 'button', class: 'secondary small', id: `down-${i}`, disabled: i === groups.length - 1, onclick: () => { [groups[i + 1], groups[i]] = [groups[i], groups[i + 1]]; drawGroups(`down-${i + 1}`); } }, 'Move down'),
          h('button', { type: 'button', class: 'secondary small', disabled: groups.length === 1, onclick: () => { groups.splice(i, 1); drawGroups('add-group'); } }, 'Remove group'))));
    })));
    if (focusId) document.getElementById(focusId)?.focus();
  };

  const save = async (e) => {
    e.preventDefault();
    replace(error);
    const pattern = bootPattern.value.trim();
    const body = { name: name.value.trim(), bootCheck: bootCheck.checked, bootConsolePattern: pattern || null, groups: groups.map((g) => ({ name: g.name.trim(), machineIds: g.machineIds, preActions: g.preActions, postActions: g.postActions })) };
    const empty = body.groups.findIndex((g) => g.machineIds.length === 0);
    if (empty >= 0) {
      replace(error, errorBox(new Error(`group ${empty + 1} has no machine`)));
      return;
    }
    try {
      const plan = existing ? await api('PUT', `${v}/plans/${existing.id}`, body) : await api('POST', `${v}/plans`, body);
      announce(`plan ${plan.name} saved`);
      ctx.go(`#/plans/${plan.id}`);
    } catch (err) {
      replace(error, errorBox(err));
    }
  };

  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/plans' }, 'Recovery plans'), ' / ', existing ? existing.name : 'new'),
    h('h1', {}, existing ? `Edit ${existing.name}` : 'New recovery plan'),
    h('form', { class: 'plan-form', onsubmit: save },
      h('label', { for: 'plan-name' }, 'Plan name'), name,
      h('div', { class: 'check' }, bootCheck, h('label', { for: 'plan-boot' }, 'Boot each machine in test failovers and drills, and check its console')),
      h('label', { for: 'plan-boot-pattern' }, 'Console text that means booted'), bootPattern,
      h('p', { class: 'help', id: 'plan-boot-pattern-help' }, 'What the replica’s serial console must print (literal text, e.g. “login:”). Empty: the master target’s own setting (any printed line by default).'),
      h('h2', {}, 'Groups, in the order they come up'),
      groupsBox,
      h('button', { type: 'button', class: 'secondary', id: 'add-group', onclick: () => { groups.push({ name: `group ${groups.length + 1}`, machineIds: [], preActions: [], postActions: [] }); drawGroups(); } }, 'Add group'),
      error,
      h('div', { class: 'actions' }, h('a', { class: 'button secondary', href: existing ? `#/plans/${existing.id}` : '#/plans' }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary', id: 'save-plan' }, 'Save plan'))));
  drawGroups();
}
