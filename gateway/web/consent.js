/*
 * consent.js: the blocking consent prompt. While a signed-in person owes consent to a newer
 * consent text, every page that needs it waits behind this dialog until they accept or log out.
 */

import { api, EP } from './api.js';
import { h, formatDate, renderSafeHtml, messageBox } from './dom.js';
import { dialog } from './dialogs.js';
import { state, refreshMe } from './session.js';
import { render, focusPage } from './router.js';
import { logout } from './chrome.js';

let consentPrompt = null; /* the open prompt, if any */

/* Shows the blocking consent prompt (once; a second call while it is open does nothing). It
 * stays until the person accepts the current consent text or logs out. */
export async function openConsentPrompt() {
  if (consentPrompt || !state.user) return;
  const text = h('div', { class: 'consent-text', id: 'consent-text' }, h('p', { class: 'muted' }, 'Loading the privacy notice…'));
  const alert = h('div', { class: 'form-alert', role: 'alert' });
  let version = 0;
  const accept = h('button', { type: 'button', class: 'btn btn-primary', id: 'consent-accept', disabled: true }, 'Accept');
  const leave = h('button', { type: 'button', class: 'btn btn-secondary', id: 'consent-logout' }, 'Log out');
  const d = dialog({
    id: 'consent-dialog',
    title: 'Please review our updated privacy notice',
    blocking: true,
    initialFocus: 'panel',
    className: 'dialog-wide',
    body: [
      h('p', null, 'To keep using your account, please read and accept the current privacy notice. ',
        'You can withdraw your consent later from your profile.'),
      text,
      alert,
    ],
    actions: [leave, accept],
    onClose: () => { consentPrompt = null; },
  });
  consentPrompt = d;

  const load = async () => {
    try {
      const c = await api('GET', EP.consent);
      version = Number(c.version) || 0;
      const heading = h('p', { class: 'consent-version' }, 'Version ' + version +
        (c.publishedAtMs ? ', published ' + formatDate(c.publishedAtMs) : ''));
      const box = h('div', { class: 'prose' });
      renderSafeHtml(box, c.html);
      text.replaceChildren(heading, box);
      accept.disabled = false;
    } catch (err) {
      text.replaceChildren(messageBox('error', err.message || 'The privacy notice could not be loaded.',
        h('button', { type: 'button', class: 'btn btn-small', onclick: load }, 'Try again')));
    }
  };

  accept.addEventListener('click', async () => {
    alert.classList.remove('is-visible');
    accept.disabled = true;
    try {
      await api('POST', EP.acceptConsent, { version });
      await refreshMe();
    } catch (err) {
      alert.replaceChildren(h('p', null, err.message));
      alert.classList.add('is-visible');
      accept.disabled = false;
      if (err.code === 'invalid' || err.field === 'version') load();
      return;
    }
    /* The page behind the prompt is redrawn first and the prompt goes after: closed first, it
     * would let the person start typing into the page it then replaces (their input lost). */
    state.flash = { text: 'Thank you. Your consent has been recorded.', kind: 'success' };
    await render();
    d.close();
    focusPage();
  });
  leave.addEventListener('click', async () => {
    d.close();
    await logout();
  });
  await load();
}

/* Closes the prompt, if open (the person signed out). */
export function closeConsentPrompt() {
  if (consentPrompt) consentPrompt.close();
}
