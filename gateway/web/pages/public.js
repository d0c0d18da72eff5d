/*
 * pages/public.js: the pages anyone may read: home, the privacy policy, and the placeholders of
 * pages a later release fills in.
 */

import { api, EP } from '../api.js';
import { h, pageHeader, formatDate, renderSafeHtml } from '../dom.js';
import { state } from '../session.js';

export function renderHome() {
  const name = state.site.name;
  const submitHref = state.user ? '/submissions/new' : '/register?next=%2Fsubmissions%2Fnew';
  const hero = h('section', { class: 'hero', 'aria-labelledby': 'hero-title' },
    h('p', { class: 'eyebrow' }, 'Peer-reviewed · Open access'),
    h('h2', { class: 'hero-title', id: 'hero-title', tabindex: '-1' }, 'Welcome to ' + name),
    h('p', { class: 'lead' },
      'Read the research we publish, or send us your manuscript. Every submission is read by ' +
      'our editors and reviewed by experts in its field.'),
    h('p', { class: 'actions' },
      h('a', { href: '/browse', class: 'btn btn-primary' }, 'Browse articles'),
      h('a', { href: submitHref, class: 'btn btn-secondary' }, 'Submit a manuscript')));

  const cards = h('section', { class: 'cards', 'aria-label': 'Get involved' },
    card('For readers', 'Browse published articles and past issues, free to read.', '/browse', 'Browse the archive'),
    card('For authors', 'Create an account and submit your manuscript for peer review.',
      state.user ? '/submissions/new' : '/register', state.user ? 'Start a submission' : 'Create an account'),
    card('For reviewers', 'Lend your expertise: reviewers keep our standards high.', '/about', 'How review works'));

  return [hero, cards];
}

function card(title, text, href, linkText) {
  return h('article', { class: 'card' },
    h('h3', null, title),
    h('p', null, text),
    h('a', { href, class: 'card-link' }, linkText));
}

export async function renderPrivacy() {
  const [policy, consent] = await Promise.allSettled([api('GET', EP.privacy), api('GET', EP.consent)]);
  if (policy.status === 'rejected') throw policy.reason;
  const body = h('div', { class: 'prose', id: 'privacy-text' });
  renderSafeHtml(body, policy.value.html);
  if (!body.childNodes.length) body.append(h('p', null, 'The privacy policy has not been published yet.'));
  /* A policy that opens with its own title gives the page its title. */
  let title = 'Privacy policy';
  const first = body.firstElementChild;
  if (first && first.tagName === 'H3' && first.textContent.trim()) {
    title = first.textContent.trim();
    first.remove();
  }
  const c = consent.status === 'fulfilled' ? consent.value : null;
  const version = c && Number(c.version) ? Number(c.version) : 0;
  return h('article', { class: 'panel panel-prose', 'aria-labelledby': 'privacy-title' },
    pageHeader(title, null, 'privacy-title'),
    h('p', { class: 'muted', id: 'privacy-meta' },
      version ? 'Current consent version: ' + version + (c.publishedAtMs ? ' (published ' + formatDate(c.publishedAtMs) + ')' : '') + '. ' : '',
      policy.value.updatedAtMs && Number(policy.value.updatedAtMs) ? 'Policy last updated ' + formatDate(policy.value.updatedAtMs) + '.' : ''),
    body,
    version && c.html ? h('section', { class: 'section', 'aria-labelledby': 'consent-notice-title' },
      h('h3', { id: 'consent-notice-title' }, 'The consent we ask for'),
      (() => { const box = h('div', { class: 'prose' }); renderSafeHtml(box, c.html); return box; })()) : null);
}

/* A page a later release fills in; the route exists so navigation never dead-ends. */
export function placeholder(title, text) {
  return () => h('section', { class: 'panel' },
    pageHeader(title, text),
    h('p', null, h('a', { href: '/' }, 'Back to the home page')));
}
