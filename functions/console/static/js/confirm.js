// Confirmation before an action: a modal dialog that says exactly what will happen.
import { h, replace } from './dom.js';

/**
 * Resolves to true if the user confirms. `body` is nodes or text; `danger` styles the
 * confirm button for actions that change production (failover); `focus` is the control that
 * takes the focus (default: the confirm button). Controls in `body` are validated on confirm.
 */
export function confirmAction({ title, body, confirmLabel, danger = false, focus = null }) {
  const dialog = document.getElementById('confirm');
  return new Promise((resolve) => {
    const finish = (ok) => {
      dialog.close();
      resolve(ok);
    };
    replace(dialog,
      h('form', { method: 'dialog', class: 'dialog-body', onsubmit: (e) => { e.preventDefault(); finish(true); } },
        h('h2', { id: 'confirm-title' }, title),
        h('div', { class: 'dialog-text' }, body),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => finish(false) }, 'Cancel'),
          h('button', { type: 'submit', class: danger ? 'danger' : 'primary', id: 'confirm-ok' }, confirmLabel))));
    dialog.setAttribute('aria-labelledby', 'confirm-title');
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
    (focus ?? dialog.querySelector('#confirm-ok')).focus();
  });
}
