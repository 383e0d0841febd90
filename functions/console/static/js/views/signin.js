// Sign-in with an operator token (viewer, operator or admin).
import { ApiError, get, setToken } from '../api.js';
import { h, replace } from '../dom.js';

export function renderSignIn(root, { onSignedIn }) {
  const error = h('div', { id: 'signin-error', 'aria-live': 'assertive' });
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help signin-error',
  });
  const submit = async (e) => {
    e.preventDefault();
    replace(error);
    setToken(input.value.trim());
    try {
      await get('/session');
      await onSignedIn();
    } catch (err) {
      setToken(null);
      const msg = err instanceof ApiError && err.status === 401 ? 'That token is not valid here.' : err.message;
      replace(error, h('p', { class: 'error', role: 'alert' }, msg));
      input.focus();
    }
  };
  replace(root,
    h('section', { class: 'signin card', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, 'Sign in to Tidemark'),
      h('form', { onsubmit: submit },
        h('label', { for: 'token' }, 'Operator token'),
        input,
        h('p', { id: 'token-help', class: 'help' },
          'A token of role viewer, operator or admin. On a local install the admin token is in ',
          h('code', {}, 'DATA_DIR/admin.token'), '; admins make more under Enrollment. ',
          'The token is kept for this browser tab only.'),
        error,
        h('button', { type: 'submit', class: 'primary' }, 'Sign in'))));
}
