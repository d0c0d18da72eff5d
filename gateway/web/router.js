/*
 * router.js: history API navigation over the route table that app.js hands to startRouter().
 * A route is { path, title, render, auth, roles, consentFree }; `:name` segments bind
 * ctx.params.name, the query is ctx.query (URLSearchParams).
 *   auth: 'user'  -> anonymous visitors go to /login?next=...
 *   auth: 'guest' -> signed-in users go to /me (or ?next=)
 *   roles: [...]  -> signed-in users holding none of them see "Access denied"
 *   consentFree   -> a signed-in page that works while consent is owed (others wait for it)
 * render(ctx) returns the page's nodes (or a promise of them); a newer navigation drops an older
 * render's view. The router also shows the flash, moves focus to the new heading and keeps
 * same-origin links inside the app. Redirect targets are checked here (isLocalPath, safeNext).
 */

import { ApiError } from './api.js';
import { h } from './dom.js';
import { dialogsOpen } from './dialogs.js';
import { state, setUser, hasRole } from './session.js';
import { renderNotFound, renderForbidden, renderConsentWait, renderError } from './pages/errors.js';

let compiled = [];
let hooks = { beforeRender: () => {}, afterRender: () => {} };

/*
 * Takes the route table and two hooks: beforeRender() runs as a navigation starts, afterRender()
 * once the new page is in place; from then on link clicks and history navigate. The first
 * page is drawn by the caller's render().
 */
export function startRouter({ routes, beforeRender, afterRender }) {
  compiled = routes.map((r) => {
    const names = [];
    const pattern = r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, (_, n) => {
      names.push(n);
      return '([^/]+)';
    });
    return { route: r, re: new RegExp('^' + pattern + '/?$'), names };
  });
  hooks = { beforeRender: beforeRender || hooks.beforeRender, afterRender: afterRender || hooks.afterRender };
  document.addEventListener('click', onLinkClick);
  window.addEventListener('popstate', () => render());
}

/* True when `value` is a path on this site: it starts with "/" but not "//" or "/\" (both of
 * which a browser reads as another host) and holds no control characters or spaces (a browser
 * drops tabs and newlines from URLs, so "/\t/evil" would become "//evil"). */
export function isLocalPath(value) {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2000) return false;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return false;
  /* eslint-disable-next-line no-control-regex */
  if (/[\u0000-\u0020\u007f\\]/.test(value)) return false;
  try {
    return new URL(value, location.origin).origin === location.origin;
  } catch {
    return false;
  }
}

/* Where to go after logging in: `next` when it is a local app page, else the person's home. */
export function safeNext(value) {
  if (!isLocalPath(value)) return '/me';
  if (/^\/(api\/|login|register)/.test(value)) return '/me';
  return value;
}

export function withNext(path, next) {
  return next && next !== '/me' ? path + '?next=' + encodeURIComponent(next) : path;
}

function match(pathname) {
  for (const { route, re, names } of compiled) {
    const m = re.exec(pathname);
    if (!m) continue;
    const params = {};
    try {
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    } catch {
      return null;
    }
    return { route, params };
  }
  return null;
}

let renderSeq = 0; /* bumps on every navigation; a slower older render then drops its view */
let rendered = false; /* after the first page, navigation moves focus to the new heading */

export function navigate(to, { replace = false } = {}) {
  const url = new URL(to, location.origin);
  if (url.origin !== location.origin) return;
  if (replace) history.replaceState(null, '', url.pathname + url.search + url.hash);
  else history.pushState(null, '', url.pathname + url.search + url.hash);
  render();
}

export async function render() {
  const seq = ++renderSeq;
  const main = document.getElementById('main');
  const found = match(location.pathname);
  const route = found ? found.route : null;
  const ctx = { params: found ? found.params : {}, query: new URLSearchParams(location.search) };
  hooks.beforeRender();

  if (route && route.auth === 'user' && !state.user) {
    navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
    return;
  }
  if (route && route.auth === 'guest' && state.user) {
    navigate(safeNext(ctx.query.get('next')), { replace: true });
    return;
  }

  let view;
  main.setAttribute('aria-busy', 'true');
  try {
    if (!route) view = renderNotFound();
    else if (route.roles && !route.roles.some(hasRole)) view = renderForbidden();
    else if (state.consentRequired && route.auth === 'user' && !route.consentFree) view = renderConsentWait();
    else view = await route.render(ctx);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && route && route.auth === 'user') {
      /* The session ended elsewhere (logout, password change, expiry): sign in again. */
      setUser(null, false);
      state.flash = { text: 'Your session has ended. Please log in again.', kind: 'info' };
      navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
      return;
    }
    if (!(err instanceof ApiError)) console.error(err);
    view = renderError(err);
  }
  if (seq !== renderSeq || view === null) return; /* a newer navigation took over */
  main.removeAttribute('aria-busy');

  main.replaceChildren(...[view].flat());
  const title = route ? route.title : 'Page not found';
  document.title = title ? title + ' · ' + state.site.name : state.site.name;
  showFlash(state.flash ? state.flash.text : '', state.flash ? state.flash.kind : '');
  state.flash = null;

  /* Move focus to the new page's heading so screen readers announce it; not on first load. */
  if (rendered && !dialogsOpen()) focusPage();
  rendered = true;
  hooks.afterRender();
}

/* Moves focus to the page's heading (screen readers announce it) and scrolls to the top. */
export function focusPage() {
  const main = document.getElementById('main');
  const heading = main.querySelector('h2');
  (heading || main).focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

export function showFlash(text, kind) {
  const flash = document.getElementById('flash');
  flash.textContent = '';
  flash.className = 'flash';
  flash.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (!text) return;
  flash.classList.add('is-visible', 'flash-' + (kind || 'info'));
  flash.append(h('p', null, text));
}

/* Same-origin links to app pages navigate without a reload; everything else is left alone. */
function onLinkClick(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!a || a.target || a.hasAttribute('download') || a.dataset.reload !== undefined) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
}
