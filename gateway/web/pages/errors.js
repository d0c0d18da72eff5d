/*
 * pages/errors.js: the pages the router shows by itself: not found, access denied, waiting for
 * consent, and an error that a page's render threw.
 */

import { ApiError } from '../api.js';
import { h, pageHeader } from '../dom.js';

export function renderNotFound() {
  return h('section', { class: 'panel' },
    pageHeader('Page not found', 'There is no page at this address.'),
    h('p', null, h('a', { href: '/' }, 'Go to the home page')));
}

export function renderForbidden() {
  return h('section', { class: 'panel' },
    pageHeader('Access denied', 'Your account does not have the role this page needs.'),
    h('p', null, h('a', { href: '/me' }, 'Go to your profile')));
}

/* What a page that needs consent shows behind the prompt while consent is owed. */
export function renderConsentWait() {
  return h('section', { class: 'panel' },
    pageHeader('Please accept the privacy notice', 'This page opens once you have accepted the current privacy notice.'));
}

export function renderError(err) {
  const known = err instanceof ApiError;
  if (known && err.code === 'consent_required') return renderConsentWait();
  if (known && err.status === 403) return renderForbidden();
  return h('section', { class: 'panel' },
    pageHeader('Something went wrong'),
    h('div', { class: 'form-alert is-visible', role: 'alert' },
      h('p', null, known ? err.message : 'This page could not be shown. Please try again.'),
      known && err.requestId ? h('p', { class: 'request-id' }, 'Reference: ' + err.requestId) : null),
    h('p', null, h('a', { href: location.pathname + location.search }, 'Try again')));
}
