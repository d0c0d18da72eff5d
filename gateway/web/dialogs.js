/*
 * dialogs.js: modal dialogs (role=dialog, aria-modal, focus kept inside, the page behind
 * inert, Escape closes unless blocking) and confirmDialog(), a yes/no question as a promise.
 * dialogsOpen() tells the router whether one is up (it then leaves focus alone).
 */

import { h } from './dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), ' +
  'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
const openDialogs = [];

/*
 * dialog({ id, title, body, actions, blocking, onClose }) -> { el, close }
 *   A modal: role=dialog with aria-modal, labelled by its title; everything behind it is
 *   inert; Tab and Shift+Tab stay inside; Escape closes it unless `blocking`. Focus returns to
 *   where it was when it closes. initialFocus 'panel' focuses the dialog itself (its title is
 *   read out) instead of its first control.
 */
export function dialog({ id, title, body, actions, blocking, onClose, className, initialFocus }) {
  const titleId = id + '-title';
  const panel = h('div', {
    id, class: 'dialog' + (className ? ' ' + className : ''), role: 'dialog', 'aria-modal': 'true',
    'aria-labelledby': titleId, tabindex: '-1',
  },
  h('h2', { class: 'dialog-title', id: titleId }, title),
  h('div', { class: 'dialog-body' }, body),
  actions && actions.length ? h('div', { class: 'dialog-actions' }, actions) : null);
  const backdrop = h('div', { class: 'dialog-backdrop' }, panel);
  const returnTo = document.activeElement;

  const onKey = (event) => {
    if (openDialogs[openDialogs.length - 1] !== handle) return;
    if (event.key === 'Escape' && !blocking) {
      event.preventDefault();
      close();
    } else if (event.key === 'Tab') {
      const items = [...panel.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
      if (!items.length) {
        event.preventDefault();
        panel.focus();
        return;
      }
      const first = items[0];
      const last = items[items.length - 1];
      if (event.shiftKey && (document.activeElement === first || !panel.contains(document.activeElement))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !panel.contains(document.activeElement))) {
        event.preventDefault();
        first.focus();
      }
    }
  };
  /* A click on an inert page cannot reach it, but focus could arrive by script: bring it back. */
  const onFocus = (event) => {
    if (openDialogs[openDialogs.length - 1] === handle && !panel.contains(event.target)) panel.focus();
  };

  let closed = false;
  function close(result) {
    if (closed) return;
    closed = true;
    document.removeEventListener('keydown', onKey, true);
    document.removeEventListener('focusin', onFocus, true);
    openDialogs.splice(openDialogs.indexOf(handle), 1);
    backdrop.remove();
    setPageInert(openDialogs.length > 0);
    if (returnTo && document.contains(returnTo) && typeof returnTo.focus === 'function') returnTo.focus();
    if (onClose) onClose(result);
  }

  const handle = { el: panel, close };
  openDialogs.push(handle);
  document.body.append(backdrop);
  setPageInert(true);
  document.addEventListener('keydown', onKey, true);
  document.addEventListener('focusin', onFocus, true);
  const first = initialFocus === 'panel' ? null : panel.querySelector('[autofocus]') || panel.querySelector(FOCUSABLE);
  (first || panel).focus();
  return handle;
}

function setPageInert(on) {
  for (const el of document.body.children) {
    if (el.classList.contains('dialog-backdrop')) continue;
    if (on) el.setAttribute('inert', '');
    else el.removeAttribute('inert');
  }
  /* Only the topmost dialog takes input. */
  const backdrops = [...document.querySelectorAll('.dialog-backdrop')];
  backdrops.forEach((b, i) => {
    if (i === backdrops.length - 1) b.removeAttribute('inert');
    else b.setAttribute('inert', '');
  });
}

/* Asks a yes/no question; resolves true when confirmed. */
export function confirmDialog({ id, title, text, confirmLabel, danger }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', {
      type: 'button', class: 'btn ' + (danger ? 'btn-danger' : 'btn-primary'),
      onclick: () => { answer = true; d.close(); },
    }, confirmLabel);
    const no = h('button', { type: 'button', class: 'btn btn-secondary', autofocus: true, onclick: () => d.close() }, 'Cancel');
    const d = dialog({
      id, title, body: [text].flat().map((t) => (t instanceof Node ? t : h('p', null, t))),
      actions: [no, yes], onClose: () => resolve(answer),
    });
  });
}

/* How many dialogs are open. */
export function dialogsOpen() {
  return openDialogs.length;
}
