// The console's shell: sign-in, the vault in view, navigation between pages (by URL hash) and
// the timers of the page in view.
import { ApiError, api, get, setToken, token } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, roleAllows } from './common.js';
import { renderSignIn } from './views/signin.js';
import { renderDashboard } from './views/dashboard.js';
import { renderMachine } from './views/machine.js';
import { renderPlans, renderPlan, renderPlanEditor } from './views/plans.js';
import { renderJobs, renderJob } from './views/jobs.js';
import { renderEnroll } from './views/enroll.js';
import { renderCertificates } from './views/certificates.js';

const VAULT_KEY = 'tidemark.vault';
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let session = null;
let vaults = [];
let timers = [];

const ROUTES = [
  [/^\/$/, renderDashboard, 'Dashboard'],
  [/^\/machines\/([\w-]+)$/, renderMachine, 'Machine'],
  [/^\/plans$/, renderPlans, 'Recovery plans'],
  [/^\/plans\/new$/, renderPlanEditor, 'New recovery plan'],
  [/^\/plans\/([\w-]+)\/edit$/, renderPlanEditor, 'Edit recovery plan'],
  [/^\/plans\/([\w-]+)$/, renderPlan, 'Recovery plan'],
  [/^\/jobs$/, renderJobs, 'Jobs and drills'],
  [/^\/jobs\/([\w-]+)$/, renderJob, 'Job'],
  [/^\/enroll$/, renderEnroll, 'Enrollment'],
  [/^\/certificates$/, renderCertificates, 'Certificates'],
];

const NAV = [
  ['#/', 'Dashboard', /^\/(machines\/.*)?$/],
  ['#/plans', 'Recovery plans', /^\/plans/],
  ['#/jobs', 'Jobs and drills', /^\/jobs/],
  ['#/enroll', 'Enrollment', /^\/enroll/],
  ['#/certificates', 'Certificates', /^\/certificates/],
];

function stopTimers() {
  for (const t of timers) clearInterval(t);
  timers = [];
}

export function currentVault() {
  const id = localStorage.getItem(VAULT_KEY);
  return vaults.find((v) => v.id === id) ?? vaults[0] ?? null;
}

function renderShell(path) {
  replace(nav, h('ul', {}, NAV.map(([href, text, active]) =>
    h('li', {}, h('a', { href, 'aria-current': active.test(path) ? 'page' : undefined }, text)))));
  if (!session) {
    replace(who);
    return;
  }
  const vault = currentVault();
  const select = vaults.length > 1 && h('label', { class: 'vault-pick' }, 'Vault ',
    h('select', {
      id: 'vault-select',
      onchange: (e) => { localStorage.setItem(VAULT_KEY, e.target.value); route(); },
    }, vaults.map((v) => h('option', { value: v.id, selected: vault?.id === v.id }, v.name))));
  replace(who,
    select || (vault ? h('span', { class: 'vault-name' }, 'Vault ', h('strong', {}, vault.name)) : null),
    h('span', { class: 'session' }, session.name, ' ', h('span', { class: 'role' }, session.role)),
    h('button', { type: 'button', class: 'secondary small', onclick: signOut }, 'Sign out'));
}

function signOut() {
  setToken(null);
  session = null;
  window.location.hash = '#/signin';
}

/** Re-reads the vaults (after one was created) and redraws the header. */
export async function refreshVaults() {
  vaults = (await get('/vaults')).items;
  renderShell(path());
}

function path() {
  return window.location.hash.replace(/^#/, '') || '/';
}

async function route() {
  stopTimers();
  const p = path();
  if (!token() || p === '/signin') {
    session = null;
    renderShell(p);
    document.title = 'Sign in · Tidemark';
    renderSignIn(main, { onSignedIn: async () => { window.location.hash = '#/'; await route(); } });
    return;
  }
  try {
    if (!session) session = await get('/session');
    vaults = (await get('/vaults')).items;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setToken(null);
      window.location.hash = '#/signin';
      return;
    }
    replace(main, errorBox(err));
    return;
  }
  renderShell(p);
  const match = ROUTES.map(([re, view, title]) => [re.exec(p), view, title]).find(([m]) => m);
  if (!match) {
    replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/' }, 'Go to the dashboard.')));
    return;
  }
  const [m, view, title] = match;
  document.title = `${title} · Tidemark`;
  const ctx = {
    session,
    vault: currentVault(),
    params: m.slice(1),
    can: (needed) => roleAllows(session.role, needed),
    every: (ms, fn) => timers.push(setInterval(() => { if (!document.hidden) fn(); }, ms)),
    go: (hash) => { window.location.hash = hash; },
    refreshVaults,
  };
  replace(main);
  try {
    await view(main, ctx);
  } catch (err) {
    main.append(errorBox(err));
  }
  // Move focus to the page's heading so keyboard and screen-reader users start there.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

window.addEventListener('hashchange', route);
route();

export { api };
