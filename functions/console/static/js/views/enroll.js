// Enrollment: a vault, a registration key and the agent install command; replication policies;
// operator tokens for other people (viewer, operator, admin).
import { api, controlPlaneUrl, get } from '../api.js';
import { announce, h, replace } from '../dom.js';
import { seconds, time } from '../format.js';
import { errorBox, guardedButton } from '../common.js';

/** The shell-quoted form of `s` when it needs quoting. */
function q(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that installs an agent on a machine and enrolls it with `key`. */
export function agentCommand({ url, key, machine, disk, state }) {
  return `tidemark agent --control-plane ${q(url)} --key ${q(key)} --state ${q(state)} --machine ${q(machine)} --disk ${q(disk)} --mode scan --interval 60`;
}

export async function renderEnroll(root, ctx) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Enrollment'),
    h('p', { class: 'sub' }, 'Register agents, and set the policies machines replicate with.'));
  if (!ctx.vault) {
    if (!ctx.can('admin')) {
      replace(root, head, h('p', {}, 'There is no vault yet; an admin creates it here.'));
      return;
    }
    const name = h('input', { id: 'vault-name', required: true, maxlength: '128', value: 'main' });
    const err = h('div');
    replace(root, head, h('section', { 'aria-labelledby': 'vault-title', class: 'card' },
      h('h2', { id: 'vault-title' }, 'Create the first vault'),
      h('form', { class: 'inline-form', onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api('POST', '/vaults', { name: name.value.trim() });
          await ctx.refreshVaults();
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        } catch (x) { replace(err, errorBox(x)); }
      } }, h('label', { for: 'vault-name' }, 'Vault name'), name, h('button', { type: 'submit', class: 'primary' }, 'Create vault')), err));
    return;
  }
  const v = `/vaults/${ctx.vault.id}`;
  const keyArea = h('div', { id: 'key-area' });
  const keysBox = h('div');
  const policiesBox = h('div');
  const tokensBox = h('div');

  // Registration key and install command.
  const ttl = h('select', { id: 'key-ttl' }, [['3600', '1 hour'], ['86400', '24 hours'], ['604800', '7 days']].map(([value, text]) => h('option', { value, selected: value === '86400' }, text)));
  const createKey = async () => {
    try {
      const k = await api('POST', `${v}/registration-keys`, { ttlSeconds: Number(ttl.value) });
      showCommand(k);
      announce('registration key created');
      loadKeys();
    } catch (err) {
      replace(keyArea, errorBox(err));
    }
  };
  const showCommand = (k) => {
    const fields = { machine: 'db1', disk: '/dev/sdb', state: '/var/lib/tidemark-agent' };
    // The command wraps (no scrolling), so it needs no focus of its own; the figure names it.
    const out = h('pre', { class: 'command', id: 'install-command' });
    const draw = () => { out.textContent = agentCommand({ url: controlPlaneUrl(), key: k.key, ...fields }); };
    const input = (id, label, field, help) => h('div', { class: 'field' },
      h('label', { for: id }, label),
      h('input', { id, value: fields[field], oninput: (e) => { fields[field] = e.target.value || fields[field]; draw(); }, 'aria-describedby': `${id}-help` }),
      h('span', { class: 'help', id: `${id}-help` }, help));
    const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(out.textContent);
        copied.textContent = 'Copied.';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(out);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        copied.textContent = 'Selected: press Ctrl+C to copy.';
      }
    };
    draw();
    replace(keyArea, h('div', { class: 'card key-card' },
      h('p', {}, 'Registration key ', h('code', { id: 'new-key' }, k.key), ` — shown once, valid until ${time(k.expiresAt)}.`),
      h('div', { class: 'fields' },
        input('cmd-machine', 'Machine name', 'machine', 'how the machine is named here'),
        input('cmd-disk', 'Disk', 'disk', 'a file or block device; repeat --disk for more'),
        input('cmd-state', 'Agent state directory', 'state', 'kept across restarts')),
      h('figure', { class: 'command-box' }, h('figcaption', {}, 'Agent install command: run this on the machine to protect'), out),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', id: 'copy-command', onclick: copy }, 'Copy command'), copied)));
  };
  const loadKeys = async () => {
    if (!ctx.can('admin')) return;
    const keys = (await get(`${v}/registration-keys`)).items;
    replace(keysBox, keys.length === 0 ? h('p', { class: 'muted' }, 'No key yet.') : h('table', { class: 'data responsive' },
      h('thead', {}, h('tr', {}, ['Key', 'Created', 'Expires', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, keys.map((k) => {
        const expired = Date.parse(k.expiresAt) < Date.now();
        return h('tr', {},
          h('th', { scope: 'row', 'data-label': 'Key' }, h('code', {}, k.id)),
          h('td', { 'data-label': 'Created' }, time(k.createdAt)),
          h('td', { 'data-label': 'Expires' }, time(k.expiresAt)),
          h('td', { 'data-label': 'State' }, k.revoked ? 'revoked' : expired ? 'expired' : 'valid'),
          h('td', { 'data-label': 'Action' }, !k.revoked && !expired ? h('button', { type: 'button', class: 'secondary small', 'aria-label': `Revoke key ${k.id}`, onclick: async () => {
            await api('DELETE', `${v}/registration-keys/${k.id}`);
            announce('key revoked');
            loadKeys();
          } }, 'Revoke') : ''));
      }))));
  };

  // Policies.
  const loadPolicies = async () => {
    const policies = (await get(`${v}/policies`)).items;
    replace(policiesBox, policies.length === 0 ? h('p', { class: 'muted' }, 'No policy yet.') : h('table', { class: 'data responsive', id: 'policies-table' },
      h('thead', {}, h('tr', {}, ['Policy', 'RPO threshold', 'Retention', 'App-consistent every', 'Bandwidth limit'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, policies.map((p) => h('tr', {},
        h('th', { scope: 'row', 'data-label': 'Policy' }, p.name),
        h('td', { 'data-label': 'RPO threshold' }, seconds(p.rpoThresholdSeconds)),
        h('td', { 'data-label': 'Retention' }, seconds(p.retentionSeconds)),
        h('td', { 'data-label': 'App-consistent' }, p.appConsistentIntervalSeconds ? seconds(p.appConsistentIntervalSeconds) : 'off'),
        h('td', { 'data-label': 'Bandwidth' }, p.bandwidthLimitBytesPerSecond ? `${Math.round(p.bandwidthLimitBytesPerSecond / 1e6)} MB/s` : 'none'))))));
  };
  const pName = h('input', { id: 'policy-name', required: true, maxlength: '128', value: 'gold' });
  const pRpo = h('input', { id: 'policy-rpo', type: 'number', min: '1', max: '86400', required: true, value: '60' });
  const pRetention = h('input', { id: 'policy-retention', type: 'number', min: '1', max: '2160', required: true, value: '24' });
  const pApp = h('input', { id: 'policy-app', type: 'number', min: '0', value: '60' });
  const policyError = h('div');
  const createPolicy = async (e) => {
    e.preventDefault();
    replace(policyError);
    try {
      await api('POST', `${v}/policies`, {
        name: pName.value.trim(), rpoThresholdSeconds: Number(pRpo.value), retentionSeconds: Number(pRetention.value) * 3600,
        appConsistentIntervalSeconds: Number(pApp.value) > 0 ? Number(pApp.value) * 60 : null,
      });
      announce('policy created');
      loadPolicies();
    } catch (err) {
      replace(policyError, errorBox(err));
    }
  };

  // Operator tokens.
  const tName = h('input', { id: 'token-name', required: true, maxlength: '128', value: '' });
  const tRole = h('select', { id: 'token-role' }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)));
  const tokenOut = h('div', { 'aria-live': 'polite' });
  const createToken = async (e) => {
    e.preventDefault();
    try {
      const t = await api('POST', '/operator-tokens', { name: tName.value.trim(), role: tRole.value });
      replace(tokenOut, h('p', { class: 'card' }, `Token for ${t.name} (${t.role}), shown once: `, h('code', { id: 'new-token' }, t.token)));
      loadTokens();
    } catch (err) {
      replace(tokenOut, errorBox(err));
    }
  };
  const loadTokens = async () => {
    if (!ctx.can('admin')) return;
    const tokens = (await get('/operator-tokens')).items;
    replace(tokensBox, h('ul', { class: 'plain' }, tokens.map((t) => h('li', {}, h('strong', {}, t.name), ` — ${t.role}, since ${time(t.createdAt)}`))));
  };

  replace(root, head,
    h('section', { 'aria-labelledby': 'agent-title' },
      h('h2', { id: 'agent-title' }, 'Install an agent'),
      h('p', { class: 'help' }, 'A registration key lets agents (and process servers and master targets) of this vault enroll until it expires or is revoked.'),
      h('div', { class: 'inline-form' }, h('label', { for: 'key-ttl' }, 'Key valid for'), ttl,
        guardedButton(ctx.session, 'admin', { class: 'primary', id: 'create-key', onclick: createKey }, 'Create registration key')),
      keyArea,
      ctx.can('admin') ? h('details', {}, h('summary', {}, 'Registration keys'), keysBox) : null),
    h('section', { 'aria-labelledby': 'policies-title' },
      h('h2', { id: 'policies-title' }, 'Replication policies'),
      policiesBox,
      ctx.can('operator') ? h('form', { class: 'card policy-form', onsubmit: createPolicy },
        h('h3', {}, 'New policy'),
        h('div', { class: 'fields' },
          h('div', { class: 'field' }, h('label', { for: 'policy-name' }, 'Name'), pName),
          h('div', { class: 'field' }, h('label', { for: 'policy-rpo' }, 'RPO alert threshold (seconds)'), pRpo),
          h('div', { class: 'field' }, h('label', { for: 'policy-retention' }, 'Keep recovery points for (hours)'), pRetention),
          h('div', { class: 'field' }, h('label', { for: 'policy-app' }, 'App-consistent point every (minutes, 0 for none)'), pApp)),
        policyError,
        h('button', { type: 'submit', class: 'secondary', id: 'create-policy' }, 'Create policy')) : null),
    ctx.can('admin') ? h('section', { 'aria-labelledby': 'tokens-title' },
      h('h2', { id: 'tokens-title' }, 'Operator tokens'),
      h('p', { class: 'help' }, 'viewer reads; operator also protects machines, edits plans and starts jobs; admin also enrolls and makes tokens.'),
      h('form', { class: 'inline-form', onsubmit: createToken },
        h('label', { for: 'token-name' }, 'Name'), tName, h('label', { for: 'token-role' }, 'Role'), tRole,
        h('button', { type: 'submit', class: 'secondary', id: 'create-token' }, 'Create token')),
      tokenOut, tokensBox) : null);
  await Promise.all([loadKeys(), loadPolicies(), loadTokens()]);
}
