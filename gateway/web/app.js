/*
 * EasyJournal browser app: one ES module, no build step, served by the gateway under a strict
 * Content-Security-Policy (no inline script or style, no eval).
 *
 * How it is organised, so a new page is one function and one row:
 *   api()      the only place that calls fetch: JSON in, JSON out, API errors become ApiError.
 *   h()        builds DOM nodes; all text goes in through textContent, never innerHTML.
 *   formView() a labelled, accessible form that shows API errors next to the named field.
 *   routes     the route table: path pattern -> { title, render, auth }.
 *   router     history API navigation, link interception, focus and title management.
 */

const state = {
  site: { name: 'EasyJournal' },
  user: null, /* the signed-in user (GET /api/me), or null */
  flash: null, /* { text, kind } shown once after the next navigation */
};

/* ---------------------------------------------------------------------------------------- */
/* API                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* An error answer from the gateway ({"error":{"code","message","field","requestId"}}), a
 * network failure (status 0) or an answer that is not the JSON we expect. */
export class ApiError extends Error {
  constructor(status, code, message, field, requestId) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.requestId = requestId || '';
  }
}

/* Calls the gateway's JSON API on the same origin. Resolves to the parsed body (null when the
 * answer has none); rejects with an ApiError. */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
  };
  if (body !== undefined) init.body = JSON.stringify(body);

  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }

  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (res.ok) {
    if (data === undefined) {
      throw new ApiError(res.status, 'bad_response', 'The server sent an answer this page cannot read.');
    }
    return data;
  }
  const e = data && typeof data === 'object' && data.error ? data.error : {};
  const message = typeof e.message === 'string' && e.message ? e.message : fallbackMessage(res.status);
  throw new ApiError(res.status, e.code || 'http_' + res.status, message, e.field, e.requestId);
}

function fallbackMessage(status) {
  if (status === 401) return 'Please log in to continue.';
  if (status === 403) return 'You do not have permission to do that.';
  if (status === 404) return 'Not found.';
  if (status === 413) return 'That is too large to send.';
  if (status === 503 || status === 504) return 'The service is busy or unavailable. Please try again in a moment.';
  return 'Something went wrong (HTTP ' + status + '). Please try again.';
}

/* The signed-in user, or null when nobody is (401). Other failures are rethrown. */
async function fetchMe() {
  try {
    const data = await api('GET', '/api/me');
    return data && data.user ? data.user : data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* DOM helpers                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* h('a', { href: '/x', class: 'btn' }, 'text', child...): attributes are set with
 * setAttribute (never "style": the CSP forbids inline styles), "on<event>" keys add listeners,
 * and strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'style') throw new Error('inline styles are not allowed; use a class');
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/* ---------------------------------------------------------------------------------------- */
/* Forms                                                                                    */
/* ---------------------------------------------------------------------------------------- */

function normaliseField(name) {
  const last = String(name || '').split('.').pop();
  return last.replace(/[_-]/g, '').toLowerCase();
}

/*
 * formView({ id, fields, submitLabel, onSubmit }) -> <form>
 *   fields: [{ name, label, type, autocomplete, required, minLength, hint }]
 *   onSubmit(values) may throw an ApiError: its message is shown next to the field it names
 *   (aria-invalid + aria-describedby) or, without a known field, in the form's alert region.
 */
function formView({ id, fields, submitLabel, busyLabel, onSubmit }) {
  const alert = h('div', { class: 'form-alert', role: 'alert', id: id + '-alert' });
  const inputs = new Map();
  const errors = new Map();

  const rows = fields.map((f) => {
    const inputId = id + '-' + f.name;
    const errorId = inputId + '-error';
    const hintId = f.hint ? inputId + '-hint' : null;
    const input = h('input', {
      id: inputId,
      name: f.name,
      type: f.type || 'text',
      autocomplete: f.autocomplete || 'off',
      required: f.required !== false,
      minlength: f.minLength || false,
      maxlength: f.maxLength || false,
      spellcheck: f.type === 'email' || f.type === 'password' ? 'false' : false,
      autocapitalize: f.type === 'email' ? 'none' : false,
      'aria-describedby': hintId || false,
    });
    const error = h('p', { class: 'field-error', id: errorId, hidden: true });
    inputs.set(f.name, { input, hintId, errorId, field: f });
    errors.set(f.name, error);
    return h('div', { class: 'field' },
      h('label', { for: inputId }, f.label),
      f.hint ? h('p', { class: 'field-hint', id: hintId }, f.hint) : null,
      input,
      error);
  });

  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, submitLabel);
  const form = h('form', { id, class: 'form', novalidate: true },
    alert, rows, h('div', { class: 'form-actions' }, button));

  function clearErrors() {
    alert.textContent = '';
    alert.classList.remove('is-visible');
    for (const [name, { input, hintId }] of inputs) {
      input.removeAttribute('aria-invalid');
      if (hintId) input.setAttribute('aria-describedby', hintId);
      else input.removeAttribute('aria-describedby');
      const error = errors.get(name);
      error.textContent = '';
      error.hidden = true;
    }
  }

  function showFieldError(name, message) {
    const entry = inputs.get(name);
    const error = errors.get(name);
    error.textContent = message;
    error.hidden = false;
    entry.input.setAttribute('aria-invalid', 'true');
    entry.input.setAttribute('aria-describedby',
      entry.hintId ? entry.errorId + ' ' + entry.hintId : entry.errorId);
  }

  function showAlert(message, requestId) {
    alert.textContent = '';
    alert.append(h('p', null, message));
    if (requestId) alert.append(h('p', { class: 'request-id' }, 'Reference: ' + requestId));
    alert.classList.add('is-visible');
  }

  /* Checks only what the browser can know for sure; the service decides the rest. */
  function validate(values) {
    const problems = [];
    for (const [name, { field }] of inputs) {
      const v = values[name];
      if (field.required !== false && v.trim() === '') {
        problems.push([name, field.label + ' is required.']);
      } else if (field.type === 'email' && v !== '' && !/^[^\s@]+@[^\s@]+$/.test(v.trim())) {
        problems.push([name, 'Enter an e-mail address like name@example.org.']);
      } else if (field.minLength && v.length < field.minLength) {
        problems.push([name, field.label + ' must be at least ' + field.minLength + ' characters.']);
      }
    }
    return problems;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    clearErrors();
    const values = {};
    for (const [name, { input, field }] of inputs) {
      values[name] = field.type === 'password' ? input.value : input.value.trim();
    }
    const problems = validate(values);
    if (problems.length) {
      for (const [name, message] of problems) showFieldError(name, message);
      inputs.get(problems[0][0]).input.focus();
      return;
    }
    form.setAttribute('aria-busy', 'true');
    button.disabled = true;
    const label = button.textContent;
    if (busyLabel) button.textContent = busyLabel;
    try {
      await onSubmit(values);
    } catch (err) {
      const known = err instanceof ApiError;
      const message = known ? err.message : 'Something went wrong. Please try again.';
      const target = known && err.field
        ? [...inputs.keys()].find((n) => normaliseField(n) === normaliseField(err.field))
        : undefined;
      if (target) {
        showFieldError(target, message);
        inputs.get(target).input.focus();
      } else {
        showAlert(message, known ? err.requestId : '');
        alert.setAttribute('tabindex', '-1');
        alert.focus();
      }
      if (!known) console.error(err);
    } finally {
      form.removeAttribute('aria-busy');
      button.disabled = false;
      button.textContent = label;
    }
  });

  return form;
}

/* ---------------------------------------------------------------------------------------- */
/* Pages                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* A path the app may send the user back to after logging in: same site, not the API. */
function safeNext(value) {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//')) return '/me';
  if (value.startsWith('/api/') || value.startsWith('/login') || value.startsWith('/register')) return '/me';
  return value;
}

function pageHeader(title, lead) {
  return h('div', { class: 'page-header' },
    h('h2', { class: 'page-title', tabindex: '-1' }, title),
    lead ? h('p', { class: 'lead' }, lead) : null);
}

function renderHome() {
  const name = state.site.name;
  const submitHref = state.user ? '/submit' : '/register?next=%2Fsubmit';
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
      state.user ? '/submit' : '/register', state.user ? 'Start a submission' : 'Create an account'),
    card('For reviewers', 'Lend your expertise: reviewers keep our standards high.', '/about', 'How review works'));

  return [hero, cards];
}

function card(title, text, href, linkText) {
  return h('article', { class: 'card' },
    h('h3', null, title),
    h('p', null, text),
    h('a', { href, class: 'card-link' }, linkText));
}

function renderLogin(ctx) {
  const next = safeNext(ctx.query.get('next'));
  const form = formView({
    id: 'login-form',
    submitLabel: 'Log in',
    busyLabel: 'Logging in…',
    fields: [
      { name: 'email', label: 'Email', type: 'email', autocomplete: 'username', maxLength: 254 },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
    ],
    onSubmit: async (values) => {
      await api('POST', '/api/auth/login', { email: values.email, password: values.password });
      await afterLogin(next);
    },
  });
  const registerHref = next === '/me' ? '/register' : '/register?next=' + encodeURIComponent(next);
  return h('section', { class: 'panel narrow', 'aria-labelledby': 'login-title' },
    withId(pageHeader('Log in'), 'login-title'),
    form,
    h('p', { class: 'form-footer' }, 'New here? ', h('a', { href: registerHref }, 'Create an account'), '.'));
}

function renderRegister(ctx) {
  const next = safeNext(ctx.query.get('next'));
  const form = formView({
    id: 'register-form',
    submitLabel: 'Create account',
    busyLabel: 'Creating account…',
    fields: [
      { name: 'name', label: 'Name', type: 'text', autocomplete: 'name', maxLength: 200 },
      { name: 'email', label: 'Email', type: 'email', autocomplete: 'email', maxLength: 254 },
      {
        name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password',
        minLength: 8, hint: 'At least 8 characters. A few unrelated words make a strong password.',
      },
    ],
    onSubmit: async (values) => {
      await api('POST', '/api/auth/register', values);
      try {
        await api('POST', '/api/auth/login', { email: values.email, password: values.password });
      } catch (err) {
        /* The account exists; let the user log in by hand rather than lose that. */
        state.flash = { text: 'Your account was created. Please log in.', kind: 'info' };
        navigate('/login?next=' + encodeURIComponent(next), { replace: true });
        return;
      }
      state.flash = { text: 'Welcome, ' + values.name + '! Your account is ready.', kind: 'success' };
      await afterLogin(next);
    },
  });
  const loginHref = next === '/me' ? '/login' : '/login?next=' + encodeURIComponent(next);
  return h('section', { class: 'panel narrow', 'aria-labelledby': 'register-title' },
    withId(pageHeader('Create an account'), 'register-title'),
    form,
    h('p', { class: 'form-footer' }, 'Already registered? ', h('a', { href: loginHref }, 'Log in'), '.'));
}

function withId(header, id) {
  header.querySelector('h2').id = id;
  return header;
}

async function afterLogin(next) {
  const user = await fetchMe();
  if (!user) {
    /* Logged in, yet the next request is anonymous: the browser did not keep the cookie
     * (e.g. a Secure cookie on plain http). Say so instead of looping. */
    throw new ApiError(0, 'no_session',
      'You were logged in, but your browser did not keep the session. Check that cookies are allowed for this site.');
  }
  state.user = user;
  renderAccountNav();
  navigate(next, { replace: true });
}

async function logout() {
  try {
    await api('POST', '/api/auth/logout', {});
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showFlash(err.message, 'error');
      return;
    }
  }
  state.user = null;
  renderAccountNav();
  state.flash = { text: 'You have been logged out.', kind: 'info' };
  navigate('/');
}

async function renderMe() {
  const user = await fetchMe();
  state.user = user;
  renderAccountNav();
  if (!user) {
    navigate('/login?next=%2Fme', { replace: true });
    return null;
  }
  const roles = Array.isArray(user.roles) ? user.roles : [];
  const since = formatDate(user.createdAtMs);
  const details = h('dl', { class: 'details' },
    h('dt', null, 'Name'), h('dd', { 'data-field': 'name' }, user.name || ''),
    h('dt', null, 'Email'), h('dd', { 'data-field': 'email' }, user.email || ''),
    h('dt', null, 'Roles'), h('dd', { 'data-field': 'roles' },
      roles.length ? h('ul', { class: 'tags' }, roles.map((r) => h('li', { class: 'tag' }, r))) : 'None'),
    since ? [h('dt', null, 'Member since'), h('dd', { 'data-field': 'created' }, since)] : null);
  return h('section', { class: 'panel', 'aria-labelledby': 'me-title' },
    withId(pageHeader('Your account', 'Signed in as ' + (user.name || user.email || 'you') + '.'), 'me-title'),
    details);
}

function formatDate(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '';
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(new Date(n));
  } catch {
    return new Date(n).toDateString();
  }
}

/* A page a later release fills in; the route exists so navigation never dead-ends. */
function placeholder(title, text) {
  return () => h('section', { class: 'panel' },
    pageHeader(title, text),
    h('p', null, h('a', { href: '/' }, 'Back to the home page')));
}

function renderNotFound() {
  return h('section', { class: 'panel' },
    pageHeader('Page not found', 'There is no page at this address.'),
    h('p', null, h('a', { href: '/' }, 'Go to the home page')));
}

function renderError(err) {
  const known = err instanceof ApiError;
  return h('section', { class: 'panel' },
    pageHeader('Something went wrong'),
    h('div', { class: 'form-alert is-visible', role: 'alert' },
      h('p', null, known ? err.message : 'This page could not be shown. Please try again.'),
      known && err.requestId ? h('p', { class: 'request-id' }, 'Reference: ' + err.requestId) : null),
    h('p', null, h('a', { href: location.pathname + location.search }, 'Try again')));
}

/* ---------------------------------------------------------------------------------------- */
/* Routes: the table IS the app's map. `:name` segments bind ctx.params.name.               */
/*   auth: 'user'  -> anonymous visitors go to /login?next=...                               */
/*   auth: 'guest' -> signed-in users go to /me                                              */
/* ---------------------------------------------------------------------------------------- */

const routes = [
  { path: '/', title: '', render: renderHome },
  { path: '/login', title: 'Log in', render: renderLogin, auth: 'guest' },
  { path: '/register', title: 'Create an account', render: renderRegister, auth: 'guest' },
  { path: '/me', title: 'Your account', render: renderMe, auth: 'user' },
  { path: '/browse', title: 'Browse articles', render: placeholder('Browse articles', 'The article archive opens here soon.') },
  { path: '/issues', title: 'Issues', render: placeholder('Issues', 'Published issues will be listed here.') },
  { path: '/about', title: 'About', render: placeholder('About the journal', 'Aims, scope and editorial policies will appear here.') },
  { path: '/submit', title: 'Submit a manuscript', render: placeholder('Submit a manuscript', 'Online submission opens here soon.'), auth: 'user' },
];

const compiled = routes.map((r) => {
  const names = [];
  const pattern = r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, (_, n) => {
    names.push(n);
    return '([^/]+)';
  });
  return { route: r, re: new RegExp('^' + pattern + '/?$'), names };
});

function match(pathname) {
  for (const { route, re, names } of compiled) {
    const m = re.exec(pathname);
    if (!m) continue;
    const params = {};
    names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    return { route, params };
  }
  return null;
}

/* ---------------------------------------------------------------------------------------- */
/* Router                                                                                   */
/* ---------------------------------------------------------------------------------------- */

let renderSeq = 0; /* bumps on every navigation; a slower older render then drops its view */
let rendered = false; /* after the first page, navigation moves focus to the new heading */

export function navigate(to, { replace = false } = {}) {
  const url = new URL(to, location.origin);
  if (replace) history.replaceState(null, '', url.pathname + url.search + url.hash);
  else history.pushState(null, '', url.pathname + url.search + url.hash);
  render();
}

async function render() {
  const seq = ++renderSeq;
  const main = document.getElementById('main');
  const found = match(location.pathname);
  const route = found ? found.route : null;
  const ctx = { params: found ? found.params : {}, query: new URLSearchParams(location.search) };

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
    view = route ? await route.render(ctx) : renderNotFound();
  } catch (err) {
    if (!(err instanceof ApiError)) console.error(err);
    view = renderError(err);
  }
  if (seq !== renderSeq || view === null) return; /* a newer navigation took over */
  main.removeAttribute('aria-busy');

  main.replaceChildren(...[view].flat());
  const title = route ? route.title : 'Page not found';
  document.title = title ? title + ' · ' + state.site.name : state.site.name;
  markCurrentNav();
  showFlash(state.flash ? state.flash.text : '', state.flash ? state.flash.kind : '');
  state.flash = null;

  /* Move focus to the new page's heading so screen readers announce it; not on first load. */
  if (rendered) {
    const heading = main.querySelector('h2');
    (heading || main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  rendered = true;
}

function showFlash(text, kind) {
  const flash = document.getElementById('flash');
  flash.textContent = '';
  flash.className = 'flash';
  if (!text) return;
  flash.classList.add('is-visible', 'flash-' + (kind || 'info'));
  flash.append(h('p', null, text));
}

function markCurrentNav() {
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
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

/* ---------------------------------------------------------------------------------------- */
/* Page chrome                                                                              */
/* ---------------------------------------------------------------------------------------- */

function renderSiteName() {
  setText('site-name', state.site.name);
  setText('footer-name', state.site.name);
  setText('footer-year', String(new Date().getFullYear()));
}

function renderAccountNav() {
  const list = document.getElementById('account-links');
  if (state.user) {
    list.replaceChildren(
      h('li', null, h('a', { href: '/me', class: 'user-name' }, state.user.name || state.user.email || 'Account')),
      h('li', null, h('button', { type: 'button', class: 'link-button', onclick: logout }, 'Log out')));
  } else {
    list.replaceChildren(
      h('li', null, h('a', { href: '/login' }, 'Log in')),
      h('li', null, h('a', { href: '/register', class: 'btn btn-small' }, 'Register')));
  }
  markCurrentNav();
}

async function boot() {
  document.addEventListener('click', onLinkClick);
  window.addEventListener('popstate', () => render());

  const [site, user] = await Promise.allSettled([api('GET', '/api/site'), fetchMe()]);
  if (site.status === 'fulfilled' && site.value && typeof site.value.name === 'string' && site.value.name) {
    state.site = { ...site.value };
  }
  state.user = user.status === 'fulfilled' ? user.value : null;
  if (user.status === 'rejected') {
    /* Not a 401 (that is fulfilled with null): the sign-in could not be checked right now. */
    const why = user.reason instanceof ApiError ? user.reason.message : 'unknown error';
    state.flash = { text: 'Your sign-in could not be checked (' + why + '). Reload to try again.', kind: 'error' };
  }

  renderSiteName();
  renderAccountNav();
  await render();
  document.documentElement.dataset.ready = 'true';
}

boot();
