/*
 * chrome.js: what surrounds every page: the site's name, the account links or the user menu,
 * the work links each role brings (ROLE_NAV), the current page marked in the navigation, and
 * logging out.
 */

import { api, ApiError, EP } from './api.js';
import { h, setText } from './dom.js';
import { state, setUser, hasRole } from './session.js';
import { navigate, showFlash } from './router.js';

/* The work links each role brings, in menu order. */
const ROLE_NAV = [
  { role: 'author', links: [['/submissions', 'My submissions'], ['/submissions/new', 'New submission']] },
  { role: 'reviewer', links: [['/reviews', 'Reviews']] },
  { role: 'editor', links: [['/editorial', 'Editorial']] },
  { role: 'admin', links: [['/admin/users', 'Users'], ['/admin/activity', 'Activity'], ['/admin/consent', 'Consent & privacy'],
    ['/admin/mail-templates', 'Mail templates'], ['/admin/dev-mail', 'Dev mail', 'devMail']] },
];

export function markCurrentNav() {
  for (const a of document.querySelectorAll('.nav a')) {
    const href = a.getAttribute('href');
    const here = href === location.pathname ||
      (href.startsWith('/admin/') && location.pathname.startsWith(href + '/') && href !== '/admin/users/new');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export function renderSiteName() {
  setText('site-name', state.site.name);
  setText('footer-name', state.site.name);
  setText('footer-year', String(new Date().getFullYear()));
}

export function renderChrome() {
  renderAccountNav();
  renderWorkNav();
  markCurrentNav();
}

export function closeUserMenu() {
  const button = document.getElementById('user-menu-button');
  const menu = document.getElementById('user-menu');
  if (!button || !menu) return;
  button.setAttribute('aria-expanded', 'false');
  menu.hidden = true;
}

function renderAccountNav() {
  const list = document.getElementById('account-links');
  if (!list) return;
  if (state.user) {
    const button = h('button', {
      type: 'button', class: 'user-menu-button', id: 'user-menu-button',
      'aria-expanded': 'false', 'aria-controls': 'user-menu',
    }, h('span', { class: 'user-name' }, state.user.name || state.user.email || 'Account'), h('span', { class: 'caret', 'aria-hidden': 'true' }));
    const menu = h('ul', { class: 'user-menu', id: 'user-menu', hidden: true },
      h('li', null, h('a', { href: '/me', id: 'menu-profile' }, 'Profile')),
      h('li', null, h('a', { href: '/invitations', id: 'menu-invitations' }, 'Invitations')),
      h('li', null, h('button', { type: 'button', class: 'menu-item', id: 'menu-logout', onclick: logout }, 'Log out')));
    button.addEventListener('click', () => {
      const open = button.getAttribute('aria-expanded') !== 'true';
      button.setAttribute('aria-expanded', String(open));
      menu.hidden = !open;
      if (open) menu.querySelector('a, button').focus();
    });
    menu.addEventListener('keydown', (event) => {
      const items = [...menu.querySelectorAll('a, button')];
      const i = items.indexOf(document.activeElement);
      if (event.key === 'Escape') {
        event.preventDefault();
        closeUserMenu();
        button.focus();
      } else if (event.key === 'ArrowDown') {
        event.preventDefault();
        items[(i + 1) % items.length].focus();
      } else if (event.key === 'ArrowUp') {
        event.preventDefault();
        items[(i - 1 + items.length) % items.length].focus();
      }
    });
    const wrap = h('li', { class: 'user-menu-wrap' }, button, menu);
    wrap.addEventListener('focusout', (event) => {
      if (event.relatedTarget && !wrap.contains(event.relatedTarget)) closeUserMenu();
    });
    list.replaceChildren(wrap);
  } else {
    list.replaceChildren(
      h('li', null, h('a', { href: '/login' }, 'Log in')),
      h('li', null, h('a', { href: '/register', class: 'btn btn-small' }, 'Register')));
  }
}

function renderWorkNav() {
  const nav = document.getElementById('work-nav');
  const list = document.getElementById('work-links');
  if (!nav || !list) return;
  const groups = ROLE_NAV.filter((g) => hasRole(g.role));
  list.replaceChildren(...groups.map((g) => h('li', { class: 'work-group', 'data-role': g.role },
    h('span', { class: 'work-group-label' }, g.role),
    h('ul', null, g.links
      .filter(([, , flag]) => !flag || state[flag] === true)
      .map(([href, text]) => h('li', null, h('a', { href, 'data-nav': href }, text)))))));
  nav.hidden = groups.length === 0;
  if (hasRole('admin') && state.devMail === null && !state.consentRequired) probeDevMail();
}

/* The dev mail link is shown only when the API answers it (EJ_DEV_MAIL on this stack). */
async function probeDevMail() {
  state.devMail = false;
  const who = state.user ? state.user.id : '';
  try {
    const res = await fetch(EP.devMail + '?limit=1', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!state.user || state.user.id !== who) return;
    state.devMail = res.ok;
  } catch {
    state.devMail = false;
  }
  if (state.devMail) {
    renderWorkNav();
    markCurrentNav();
  }
}

/* Ends the session and goes home. (An open consent prompt closes itself when the user goes.) */
export async function logout() {
  try {
    await api('POST', EP.logout, {});
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showFlash(err.message, 'error');
      return;
    }
  }
  setUser(null, false);
  state.flash = { text: 'You have been logged out.', kind: 'info' };
  navigate('/');
}
