// Certificates: what the vault's CA issued, each one's state, and revoking one (admin), the
// console's face of GET …/certificates and POST …/certificates/{serial}/revoke (docs/security.md).
import { api, get } from '../api.js';
import { announce, h, replace, replaceIfChanged } from '../dom.js';
import { confirmAction } from '../confirm.js';
import { time } from '../format.js';
import { errorBox } from '../common.js';

const REFRESH_MS = 30_000;
/**
 * Less than this share of its lifetime left is "expiring soon": components renew at a quarter
 * by default (TIDEMARK_CERTIFICATE_RENEW_FRACTION), so one still unrenewed then needs a look.
 */
const EXPIRING_FRACTION = 0.25;
/** How far back the audit log is read to say who revoked what. */
const AUDIT_LIMIT = 1000;

const ROLE_TEXT = { agent: 'agent', 'process-server': 'process server', 'master-target': 'master target', operator: 'operator' };

const STATES = {
  valid: { tone: 'good', mark: '●' },
  'expiring soon': { tone: 'warn', mark: '▲' },
  expired: { tone: 'none', mark: '○' },
  revoked: { tone: 'bad', mark: '■' },
};

const FILTERS = [
  ['all', 'All', () => true],
  ['valid', 'Valid (expiring soon included)', (s) => s === 'valid' || s === 'expiring soon'],
  ['expiring', 'Expiring soon', (s) => s === 'expiring soon'],
  ['revoked', 'Revoked', (s) => s === 'revoked'],
  ['expired', 'Expired', (s) => s === 'expired'],
];

/** The state of a certificate record at `nowMs`: revoked, expired, expiring soon or valid. */
export function certificateState(c, nowMs) {
  if (c.revokedAt) return 'revoked';
  const endMs = Date.parse(c.notAfter);
  if (endMs <= nowMs) return 'expired';
  const lifetimeMs = endMs - Date.parse(c.issuedAt);
  return endMs - nowMs < lifetimeMs * EXPIRING_FRACTION ? 'expiring soon' : 'valid';
}

function stateBadge(state) {
  const { tone, mark } = STATES[state];
  return h('span', { class: `badge ${tone}` }, h('span', { 'aria-hidden': 'true' }, mark), ' ', state);
}

/** Newest first; serials break ties so that the order is stable. */
function byIssued(a, b) {
  return b.issuedAt.localeCompare(a.issuedAt) || a.serial.localeCompare(b.serial);
}

/** Who revoked each serial, from the `certificate.revoke` entries of the audit log (when it still has them). */
async function revokers(v) {
  try {
    const audit = (await get(`${v}/audit?limit=${AUDIT_LIMIT}`)).items;
    return new Map(audit.filter((a) => a.action === 'certificate.revoke' && a.targetId).map((a) => [a.targetId, a.actor]));
  } catch {
    return new Map(); // the list still stands without it
  }
}

function issuedTo(c) {
  const id = c.role === 'agent' ? h('a', { href: `#/machines/${c.subjectId}` }, c.subjectId) : h('code', {}, c.subjectId);
  return [
    h('strong', {}, c.name), ' ', h('span', { class: 'muted' }, ROLE_TEXT[c.role] ?? c.role),
    h('span', { class: 'block muted' }, id),
    c.hosts.length ? h('span', { class: 'block muted' }, `for ${c.hosts.join(', ')}`) : null,
  ];
}

export async function renderCertificates(root, ctx) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Certificates'),
    h('p', { class: 'sub' }, 'Every certificate the vault’s CA issued to agents, process servers, master targets and operators.'));
  if (!ctx.vault) {
    replace(root, head, h('p', {}, 'There is no vault yet. ',
      ctx.can('admin') ? h('a', { href: '#/enroll' }, 'Create one under Enrollment.') : 'Ask an admin to create one.'));
    return;
  }
  const v = `/vaults/${ctx.vault.id}`;
  const mayRevoke = ctx.can('admin');
  const message = h('div', { id: 'certificates-message' });
  const listBox = h('div');
  let filter = 'all';
  let records = [];
  let revokedBy = new Map();

  const filterSelect = h('select', {
    id: 'certificate-filter',
    onchange: (e) => { filter = e.target.value; draw(); },
  }, FILTERS.map(([value, text]) => h('option', { value }, text)));

  const draw = () => {
    const nowMs = Date.now();
    const renewedAs = new Map(records.filter((c) => c.renewalOf).map((c) => [c.renewalOf, c.serial]));
    const rows = records.map((c) => ({ c, state: certificateState(c, nowMs), by: revokedBy.get(c.serial) ?? null, renewed: renewedAs.get(c.serial) ?? null }));
    const counts = new Map(FILTERS.map(([value, , keep]) => [value, rows.filter((r) => keep(r.state)).length]));
    for (const option of filterSelect.options) {
      const [, text] = FILTERS.find(([value]) => value === option.value);
      option.textContent = `${text} (${counts.get(option.value)})`;
    }
    const keep = FILTERS.find(([value]) => value === filter)[2];
    const shown = rows.filter((r) => keep(r.state));
    replaceIfChanged(listBox, JSON.stringify([filter, mayRevoke, shown.map((r) => [r.c, r.state, r.by, r.renewed])]), () => {
      if (records.length === 0) {
        return h('p', { class: 'muted' }, 'The vault’s CA has issued no certificate yet: components get one when they enroll, operators when an admin issues one.');
      }
      if (shown.length === 0) return h('p', { class: 'muted' }, 'No certificate in this state.');
      return h('table', { class: 'data responsive', id: 'certificates-table' },
        h('caption', { class: 'visually-hidden' }, 'Certificates, newest first'),
        h('thead', {}, h('tr', {}, ['Serial', 'Issued to', 'Issued', 'Expires', 'State', mayRevoke ? 'Action' : null]
          .filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, shown.map(({ c, state, by, renewed }) => h('tr', { 'data-serial': c.serial },
          h('th', { scope: 'row', 'data-label': 'Serial' }, h('code', { class: 'serial' }, c.serial)),
          h('td', { 'data-label': 'Issued to' }, issuedTo(c)),
          h('td', { 'data-label': 'Issued' }, h('time', { datetime: c.issuedAt }, time(c.issuedAt))),
          h('td', { 'data-label': 'Expires' }, h('time', { datetime: c.notAfter }, time(c.notAfter))),
          h('td', { 'data-label': 'State', class: 'certificate-state' }, stateBadge(state),
            c.revokedAt ? h('span', { class: 'block revoked-when' }, `revoked ${time(c.revokedAt)}${by ? ` by ${by.name} (${by.role})` : ''}`) : null,
            c.reason ? h('span', { class: 'block muted' }, `reason: ${c.reason}`) : null,
            renewed ? h('span', { class: 'block muted' }, 'renewed as ', h('code', { class: 'serial' }, renewed)) : null),
          mayRevoke ? h('td', { 'data-label': 'Action' }, state === 'valid' || state === 'expiring soon'
            ? h('button', { type: 'button', class: 'secondary small', id: `revoke-${c.serial}`, 'aria-label': `Revoke certificate ${c.serial}`, onclick: () => revoke(c) }, 'Revoke')
            : '—') : null))));
    });
  };

  const load = async () => {
    const [certificates, by] = await Promise.all([get(`${v}/certificates`), revokers(v)]);
    records = certificates.items.sort(byIssued);
    revokedBy = by;
    draw();
  };

  const revoke = async (c) => {
    const role = ROLE_TEXT[c.role] ?? c.role;
    const reason = h('input', { id: 'revoke-reason', maxlength: '200', 'aria-describedby': 'revoke-reason-help' });
    const credentials = h('input', { type: 'checkbox', id: 'revoke-credentials', 'aria-describedby': 'revoke-credentials-help' });
    const ok = await confirmAction({
      title: `Revoke the certificate of ${c.name}?`,
      body: [
        h('p', {}, `Certificate `, h('code', { class: 'serial' }, c.serial), ` of ${role} ${c.name} will be refused by this vault’s process servers, master targets and agents within about 30 s, until it would have expired (${time(c.notAfter)}). It cannot be renewed: `,
          c.role === 'operator' ? 'an admin issues a new operator certificate.' : 'the component needs a new enrollment for another.'),
        h('div', { class: 'field' }, h('label', { for: 'revoke-reason' }, 'Reason (optional)'), reason,
          h('span', { class: 'help', id: 'revoke-reason-help' }, 'kept with the certificate’s record and shown here')),
        c.role === 'operator' ? null : h('div', {},
          h('div', { class: 'check' }, credentials, h('label', { for: 'revoke-credentials' }, 'Also revoke its bearer credential')),
          h('p', { class: 'help', id: 'revoke-credentials-help' }, `The ${role}’s site credential (crd_…) still reaches the control plane without the certificate. Revoke it too for a stolen key or a decommissioned machine: the ${role} is then shut out and must enroll again under a new identity.`)),
      ],
      confirmLabel: 'Revoke certificate',
      danger: true,
    });
    if (!ok) return;
    replace(message);
    const body = { revokeCredentials: credentials.checked };
    if (reason.value.trim()) body.reason = reason.value.trim();
    let revoked;
    try {
      revoked = await api('POST', `${v}/certificates/${c.serial}/revoke`, body);
    } catch (err) {
      replace(message, errorBox({ message: `revoking certificate ${c.serial} of ${c.name} failed: ${err.message ?? err}`, hint: err.hint }));
      message.querySelector('.error')?.setAttribute('tabindex', '-1');
      message.querySelector('.error')?.focus();
      return;
    }
    records = records.map((r) => (r.serial === revoked.serial ? revoked : r));
    draw();
    announce(`certificate ${c.serial} of ${c.name} revoked${body.revokeCredentials ? ', with its credential' : ''}`);
    await load().catch(() => undefined); // who revoked it, from the audit log; the next refresh tries again
    // The button is gone with the row's state: the focus goes to the row.
    const row = listBox.querySelector(`tr[data-serial="${c.serial}"] th`);
    if (row) {
      row.setAttribute('tabindex', '-1');
      row.focus();
    }
  };

  replace(root, head,
    h('div', { class: 'inline-form' }, h('label', { for: 'certificate-filter' }, 'Show'), filterSelect),
    mayRevoke ? null : h('p', { class: 'help', id: 'revoke-why' }, 'Revoking a certificate needs the admin role.'),
    message,
    listBox);
  await load();
  ctx.every(REFRESH_MS, () => load().catch(() => undefined));
}
