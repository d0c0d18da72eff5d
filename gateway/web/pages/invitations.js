/*
 * pages/invitations.js: the invitations waiting for the signed-in person. An editor or admin
 * asks someone to take a role; nothing changes on the account until that person accepts here
 * (or declines). The mail an invitation sends links to this page.
 */

import { api, ApiError, EP } from '../api.js';
import { h, pageHeader, messageBox, formatDate } from '../dom.js';
import { state, refreshMe } from '../session.js';
import { render } from '../router.js';

const ARTICLE = { author: 'an author', reviewer: 'a reviewer', editor: 'an editor', admin: 'an administrator' };

/* One invitation with its two answers. */
function invitationItem(inv) {
  const role = ARTICLE[inv.role] || inv.role;
  const who = inv.inviterName || 'The editors';
  const titleId = 'invitation-' + inv.id + '-title';
  const status = h('p', { class: 'invitation-status', role: 'status' });
  const buttons = [];
  const answer = async (accept) => {
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = accept ? 'Accepting…' : 'Declining…';
    try {
      await api('POST', accept ? EP.acceptRoleInvitation(inv.id) : EP.declineRoleInvitation(inv.id));
      if (accept) await refreshMe();
      state.flash = accept
        ? { text: 'You accepted the invitation: you are now ' + role + '.', kind: 'success' }
        : { text: 'You declined the invitation to be ' + role + '.', kind: 'info' };
      render();
    } catch (err) {
      buttons.forEach((b) => { b.disabled = false; });
      status.textContent = err instanceof ApiError ? err.message : 'The answer could not be sent.';
    }
  };
  const accept = h('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-action': 'accept',
    'aria-describedby': titleId, onclick: () => answer(true) }, 'Accept');
  const decline = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'decline',
    'aria-describedby': titleId, onclick: () => answer(false) }, 'Decline');
  buttons.push(accept, decline);
  return h('li', { class: 'invitation', 'data-invitation': inv.id, 'data-role': inv.role },
    h('p', { class: 'invitation-title', id: titleId }, who + ' invites you to be ' + role + '.'),
    h('p', { class: 'muted' }, 'Sent ' + formatDate(inv.createdAtMs) + '; expires ' + formatDate(inv.expiresAtMs) + '.'),
    h('div', { class: 'invitation-actions' }, accept, decline),
    status);
}

/* The route is for signed-in people (auth: 'user'): the router sends others to log in. */
export async function renderInvitations() {
  const data = await api('GET', EP.myInvitations);
  const list = (data && data.invitations) || [];
  return h('section', { class: 'panel', 'aria-labelledby': 'invitations-title' },
    pageHeader('Invitations', 'Requests to take a role in the journal. Nothing changes on your account until you accept.', 'invitations-title'),
    list.length
      ? h('ul', { class: 'invitation-list', id: 'invitation-list' }, list.map(invitationItem))
      : messageBox('info', 'You have no invitations waiting.'));
}
