/*
 * EasyJournal browser app: one ES module, no build step, served by the gateway under a strict
 * Content-Security-Policy (no inline script or style, no eval).
 *
 * How it is organised, so a new page is one function and one row:
 *   EP         every API path the app calls, in one table.
 *   api()      the only place that calls fetch: JSON in, JSON out, API errors become ApiError;
 *              a 403 consent_required opens the consent prompt.
 *   h()        builds DOM nodes; all text goes in through textContent, never innerHTML.
 *   formView() a labelled, accessible form that shows API errors next to the named field.
 *   dialog()   a modal dialog (role=dialog, aria-modal, focus kept inside, page behind inert).
 *   routes     the route table: path pattern -> { title, render, auth, roles }.
 *   router     history API navigation, link interception, focus and title management.
 */

import { uploadWidget } from './upload.js';

const state = {
  site: { name: 'EasyJournal' },
  user: null, /* the signed-in user (GET /api/me), or null */
  consentRequired: false, /* the user owes consent to a newer consent text */
  devMail: null, /* null: not asked yet; true/false: the dev mail API answers (admins only) */
  flash: null, /* { text, kind } shown once after the next navigation */
};

/* Every API path the app calls. Paths with an id are functions. */
const EP = {
  site: '/api/site',
  me: '/api/me',
  register: '/api/auth/register',
  login: '/api/auth/login',
  logout: '/api/auth/logout',
  verifyEmail: '/api/auth/verify',
  resendVerification: '/api/auth/verify/resend',
  forgotPassword: '/api/auth/password/forgot',
  resetPassword: '/api/auth/password/reset',
  acceptInvitation: '/api/auth/invitation/accept',
  confirmEmail: '/api/auth/email/confirm',
  confirmErasure: '/api/auth/erasure/confirm',
  profile: '/api/me',
  changePassword: '/api/me/password',
  changeEmail: '/api/me/email',
  exportData: '/api/me/export',
  requestErasure: '/api/me/erasure',
  consent: '/api/consent',
  acceptConsent: '/api/consent/accept',
  withdrawConsent: '/api/consent/withdraw',
  privacy: '/api/privacy',
  users: '/api/admin/users',
  user: (id) => '/api/admin/users/' + encodeURIComponent(id),
  userRole: (id, role) => '/api/admin/users/' + encodeURIComponent(id) + '/roles/' + encodeURIComponent(role),
  deactivate: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/deactivate',
  reactivate: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/reactivate',
  eraseUser: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/erase',
  activity: '/api/admin/activity',
  publishConsent: '/api/admin/consent',
  consentStats: '/api/admin/consent',
  setPrivacy: '/api/admin/privacy',
  mailTemplates: '/api/admin/mail-templates',
  mailTemplate: (key) => '/api/admin/mail-templates/' + encodeURIComponent(key),
  devMail: '/api/admin/dev-mail',
};

const ROLES = ['author', 'reviewer', 'editor', 'admin'];
const THEMES = [
  ['light', 'Light'],
  ['dark', 'Dark'],
  ['journal', 'Journal'],
  ['modern', 'Modern'],
  ['elegant', 'Elegant'],
  ['high-contrast', 'High contrast'],
];

/* ---------------------------------------------------------------------------------------- */
/* API                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* An error answer from the gateway ({"error":{"code","message","field","requestId"}}), a
 * network failure (status 0) or an answer that is not the JSON we expect. */
export class ApiError extends Error {
  constructor(status, code, message, field, requestId, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.requestId = requestId || '';
    this.retryAfter = retryAfter || 0;
  }
}

/* Calls the gateway's JSON API on the same origin. Resolves to the parsed body (null when the
 * answer has none); rejects with an ApiError. A 403 consent_required also opens the consent
 * prompt. Every state-changing call carries Content-Type: application/json, which the gateway
 * requires (a cross-site form cannot send it). */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }

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
  const retryAfter = Number(res.headers.get('Retry-After')) || 0;
  let message = typeof e.message === 'string' && e.message ? e.message : fallbackMessage(res.status);
  if (res.status === 429 && retryAfter) message = tooManyMessage(message, retryAfter);
  const err = new ApiError(res.status, e.code || 'http_' + res.status, message, e.field, e.requestId, retryAfter);
  if (err.status === 403 && err.code === 'consent_required') {
    state.consentRequired = true;
    openConsentPrompt();
  }
  throw err;
}

function tooManyMessage(message, seconds) {
  if (/\d/.test(message)) return message; /* the service already says how long */
  const wait = seconds >= 90 ? Math.ceil(seconds / 60) + ' minutes' : seconds + ' seconds';
  return message.replace(/[.\s]*$/, '') + '. Please wait ' + wait + ' before trying again.';
}

function fallbackMessage(status) {
  if (status === 401) return 'Please log in to continue.';
  if (status === 403) return 'You do not have permission to do that.';
  if (status === 404) return 'Not found.';
  if (status === 413) return 'That is too large to send.';
  if (status === 429) return 'Too many attempts';
  if (status === 503 || status === 504) return 'The service is busy or unavailable. Please try again in a moment.';
  return 'Something went wrong (HTTP ' + status + '). Please try again.';
}

/* The signed-in user, or null when nobody is (401). Other failures are rethrown. Keeps
 * state.user, state.consentRequired and the theme in step with the answer. */
async function refreshMe() {
  let data;
  try {
    data = await api('GET', EP.me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setUser(null, false);
      return null;
    }
    throw err;
  }
  const user = data && data.user ? data.user : null;
  setUser(user, Boolean(data && data.consentRequired));
  return user;
}

function setUser(user, consentRequired) {
  const before = state.user ? state.user.id + '|' + rolesOf(state.user).join(',') : '';
  state.user = user;
  state.consentRequired = Boolean(user) && consentRequired;
  const after = user ? user.id + '|' + rolesOf(user).join(',') : '';
  if (before !== after) state.devMail = null;
  applyTheme(user ? user.theme : '');
  renderChrome();
}

function rolesOf(user) {
  return user && Array.isArray(user.roles) ? user.roles : [];
}

function hasRole(role) {
  return rolesOf(state.user).includes(role);
}

/* The theme preference as data-theme on <html>; none = follow the system (prefers-color-scheme). */
function applyTheme(theme) {
  const root = document.documentElement;
  if (THEMES.some(([value]) => value === theme)) root.dataset.theme = theme;
  else delete root.dataset.theme;
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

/* Plain text with its http(s) URLs as links: text nodes and anchors only. */
export function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"']+/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    let url = m[0];
    /* Sentence punctuation after a URL is not part of it. */
    const trail = /[.,;:!?)\]]+$/.exec(url);
    if (trail) url = url.slice(0, -trail[0].length);
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    out.push(h('a', { href: url, class: 'mail-link', rel: 'noopener noreferrer' }, url));
    last = m.index + url.length;
    re.lastIndex = last;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/* The API's HTML (libcmark, safe mode) into `container`. cmark writes well-formed markup, so it
 * is parsed as XML: inert (XML elements have no event handlers, nothing runs or loads) and then
 * rebuilt node by node from an allow-list of elements and attributes, so even a changed server
 * could not bring script, styles or handlers in. Markup that does not parse is shown as text. */
const SAFE_TAGS = new Set(['p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'em',
  'strong', 'code', 'pre', 'blockquote', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'del', 'sup', 'sub']);

export function renderSafeHtml(container, html) {
  const source = String(html || '');
  const doc = new DOMParser().parseFromString('<root>' + source + '</root>', 'application/xml');
  if (doc.getElementsByTagName('parsererror').length || !doc.documentElement) {
    container.replaceChildren(...source.replace(/<[^>]*>/g, ' ').split(/\n{2,}/)
      .map((t) => t.trim()).filter(Boolean).map((t) => h('p', null, t)));
    return;
  }
  const copy = (node) => {
    if (node.nodeType === Node.TEXT_NODE || node.nodeType === Node.CDATA_SECTION_NODE) {
      return document.createTextNode(node.nodeValue);
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return null;
    const kids = [...node.childNodes].map(copy).flat().filter(Boolean);
    const tag = String(node.localName).toLowerCase();
    if (!SAFE_TAGS.has(tag)) return kids.length ? kids : null;
    /* The page's own title is an h2: the document's headings go below it. */
    const heading = /^h([1-6])$/.exec(tag);
    const el = document.createElement(heading ? 'h' + Math.min(6, Number(heading[1]) + 2) : tag);
    if (tag === 'a') {
      const href = node.getAttribute('href') || '';
      if (/^(https?:|mailto:|\/(?![/\\])|#)/i.test(href)) el.setAttribute('href', href);
      if (/^https?:/i.test(href)) el.setAttribute('rel', 'noopener noreferrer');
    }
    if (tag === 'ol' && /^\d+$/.test(node.getAttribute('start') || '')) {
      el.setAttribute('start', node.getAttribute('start'));
    }
    el.append(...kids);
    return el;
  };
  container.replaceChildren(...[...doc.documentElement.childNodes].map(copy).flat().filter(Boolean));
}

function formatDate(ms, withTime) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '';
  try {
    const opts = withTime ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'long' };
    return new Intl.DateTimeFormat(undefined, opts).format(new Date(n));
  } catch {
    return new Date(n).toISOString();
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Dialogs                                                                                  */
/* ---------------------------------------------------------------------------------------- */

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
function dialog({ id, title, body, actions, blocking, onClose, className, initialFocus }) {
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
function confirmDialog({ id, title, text, confirmLabel, danger }) {
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

/* ---------------------------------------------------------------------------------------- */
/* Forms                                                                                    */
/* ---------------------------------------------------------------------------------------- */

function normaliseField(name) {
  const last = String(name || '').split('.').pop();
  return last.replace(/[_-]/g, '').toLowerCase();
}

/*
 * formView({ id, fields, submitLabel, busyLabel, onSubmit, extra, className }) -> <form>
 *   fields: [{ name, label, type, autocomplete, required, minLength, maxLength, hint, value,
 *              options: [[value, text]] (select), rows (textarea), aliases: [api field names],
 *              labelNodes (checkbox label with links) }]
 *   type: text, email, password, url, date, textarea, select, checkbox.
 *   onSubmit(values) may throw an ApiError: its message is shown next to the field it names
 *   (aria-invalid + aria-describedby) or, without a known field, in the form's alert region.
 *   A string it returns is shown in the form's status region (role=status). `secondary` is a
 *   node placed after the submit button; `submitClass` replaces btn-primary (e.g. btn-danger).
 */
function formView({ id, fields, submitLabel, busyLabel, onSubmit, extra, className, secondary, submitClass }) {
  const alert = h('div', { class: 'form-alert', role: 'alert', id: id + '-alert' });
  const status = h('div', { class: 'form-status', role: 'status', id: id + '-status' });
  const inputs = new Map();
  const errors = new Map();

  const rows = fields.map((f) => {
    const inputId = id + '-' + f.name;
    const errorId = inputId + '-error';
    const hintId = f.hint ? inputId + '-hint' : null;
    const type = f.type || 'text';
    let input;
    const common = {
      id: inputId,
      name: f.name,
      required: f.required !== false && type !== 'checkbox' ? true : (type === 'checkbox' && f.required === true),
      'aria-describedby': hintId || false,
    };
    if (type === 'textarea') {
      input = h('textarea', { ...common, rows: f.rows || 4, maxlength: f.maxLength || false, spellcheck: 'true' });
      input.value = f.value || '';
    } else if (type === 'select') {
      input = h('select', common, (f.options || []).map(([v, t]) => h('option', { value: v }, t)));
      input.value = f.value || '';
    } else if (type === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox' });
      input.checked = Boolean(f.value);
    } else {
      input = h('input', {
        ...common,
        type,
        autocomplete: f.autocomplete || 'off',
        minlength: f.minLength || false,
        maxlength: f.maxLength || false,
        inputmode: f.inputmode || false,
        placeholder: f.placeholder || false,
        spellcheck: type === 'email' || type === 'password' || f.name === 'orcid' ? 'false' : false,
        autocapitalize: type === 'email' ? 'none' : false,
      });
      if (f.value !== undefined && f.value !== null) input.value = String(f.value);
    }
    const error = h('p', { class: 'field-error', id: errorId, hidden: true });
    inputs.set(f.name, { input, hintId, errorId, field: f });
    errors.set(f.name, error);
    if (type === 'checkbox') {
      return h('div', { class: 'field field-check' },
        h('div', { class: 'check-row' }, input, h('label', { for: inputId }, f.labelNodes || f.label)),
        f.hint ? h('p', { class: 'field-hint', id: hintId }, f.hint) : null,
        error);
    }
    return h('div', { class: 'field' },
      h('label', { for: inputId }, f.label, f.required === false && !f.noOptionalMark ? h('span', { class: 'optional' }, ' (optional)') : null),
      f.hint ? h('p', { class: 'field-hint', id: hintId }, f.hint) : null,
      input,
      error);
  });

  const button = h('button', { type: 'submit', class: 'btn ' + (submitClass || 'btn-primary') }, submitLabel);
  const form = h('form', { id, class: 'form' + (className ? ' ' + className : ''), novalidate: true },
    alert, status, rows, extra || null, h('div', { class: 'form-actions' }, button, secondary || null));

  function clearErrors() {
    alert.textContent = '';
    alert.classList.remove('is-visible');
    status.textContent = '';
    status.classList.remove('is-visible');
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
      const type = field.type || 'text';
      if (type === 'checkbox') {
        if (field.required === true && !v) problems.push([name, field.requiredMessage || 'Please tick this box to continue.']);
      } else if (field.required !== false && v.trim() === '') {
        problems.push([name, field.label + ' is required.']);
      } else if (type === 'email' && v !== '' && !/^[^\s@]+@[^\s@]+$/.test(v.trim())) {
        problems.push([name, 'Enter an e-mail address like name@example.org.']);
      } else if (field.minLength && v !== '' && v.length < field.minLength) {
        problems.push([name, field.label + ' must be at least ' + field.minLength + ' characters.']);
      } else if (field.match && v !== values[field.match]) {
        problems.push([name, field.matchMessage || 'The two entries do not match.']);
      } else if (field.pattern && v !== '' && !field.pattern.test(v)) {
        problems.push([name, field.patternMessage]);
      }
    }
    return problems;
  }

  function fieldFor(apiField) {
    const want = normaliseField(apiField);
    for (const [name, { field }] of inputs) {
      if (normaliseField(name) === want) return name;
      if ((field.aliases || []).some((a) => normaliseField(a) === want)) return name;
    }
    return undefined;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    clearErrors();
    const values = {};
    for (const [name, { input, field }] of inputs) {
      if (field.type === 'checkbox') values[name] = input.checked;
      else values[name] = field.type === 'password' || field.type === 'textarea' ? input.value : input.value.trim();
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
      const done = await onSubmit(values, form);
      if (typeof done === 'string' && done && document.contains(form)) {
        status.textContent = '';
        status.append(h('p', null, done));
        status.classList.add('is-visible');
      }
    } catch (err) {
      const known = err instanceof ApiError;
      const message = known ? err.message : 'Something went wrong. Please try again.';
      const target = known && err.field ? fieldFor(err.field) : undefined;
      if (known && err.code === 'consent_required') {
        showAlert('Please accept the updated privacy notice first.', '');
      } else if (target) {
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

  form.inputs = inputs;
  return form;
}

/* A message box in a page: role=alert for errors, role=status for the rest; `quiet` leaves the
 * role out, for a box placed inside a region that already is a live region. */
function messageBox(kind, text, extra, quiet) {
  return h('div', { class: 'message message-' + kind, role: quiet ? false : kind === 'error' ? 'alert' : 'status' },
    h('p', null, text), extra || null);
}

/* ---------------------------------------------------------------------------------------- */
/* Consent prompt                                                                           */
/* ---------------------------------------------------------------------------------------- */

let consentPrompt = null; /* the open prompt, if any */

/* Shows the blocking consent prompt (once; a second call while it is open does nothing). It
 * stays until the person accepts the current consent text or logs out. */
async function openConsentPrompt() {
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
      d.close();
      await refreshMe();
      state.flash = { text: 'Thank you. Your consent has been recorded.', kind: 'success' };
      render();
    } catch (err) {
      alert.replaceChildren(h('p', null, err.message));
      alert.classList.add('is-visible');
      accept.disabled = false;
      if (err.code === 'invalid' || err.field === 'version') load();
    }
  });
  leave.addEventListener('click', async () => {
    d.close();
    await logout();
  });
  await load();
}

/* ---------------------------------------------------------------------------------------- */
/* Redirects                                                                                */
/* ---------------------------------------------------------------------------------------- */

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
function safeNext(value) {
  if (!isLocalPath(value)) return '/me';
  if (/^\/(api\/|login|register)/.test(value)) return '/me';
  return value;
}

function withNext(path, next) {
  return next && next !== '/me' ? path + '?next=' + encodeURIComponent(next) : path;
}

/* ---------------------------------------------------------------------------------------- */
/* Pages                                                                                    */
/* ---------------------------------------------------------------------------------------- */

function pageHeader(title, lead, id) {
  return h('div', { class: 'page-header' },
    h('h2', { class: 'page-title', tabindex: '-1', id: id || false }, title),
    lead ? h('p', { class: 'lead' }, lead) : null);
}

function renderHome() {
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

function narrowPanel(id, title, lead, ...content) {
  return h('section', { class: 'panel narrow', 'aria-labelledby': id + '-title' },
    pageHeader(title, lead, id + '-title'), content);
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
      { name: 'rememberMe', label: 'Keep me signed in on this device for 30 days', type: 'checkbox', required: false },
    ],
    onSubmit: async (values) => {
      await api('POST', EP.login, { email: values.email, password: values.password, rememberMe: values.rememberMe });
      await afterLogin(next);
    },
  });
  return narrowPanel('login', 'Log in', null,
    form,
    h('p', { class: 'form-footer' }, h('a', { href: '/forgot-password' }, 'Forgot your password?')),
    h('p', { class: 'form-footer' }, 'New here? ', h('a', { href: withNext('/register', next) }, 'Create an account'), '.'));
}

const ORCID_HINT = 'Your 16-character ORCID iD, like 0000-0002-1825-0097 (the last character may be X).';
const ORCID_RE = /^(https?:\/\/orcid\.org\/)?\d{4}-\d{4}-\d{4}-\d{3}[\dX]$/i;

function orcidField(value) {
  return {
    name: 'orcid', label: 'ORCID iD', required: false, hint: ORCID_HINT, value: value || '',
    placeholder: '0000-0000-0000-0000', maxLength: 40, autocomplete: 'off',
    pattern: ORCID_RE, patternMessage: 'Enter an ORCID iD in the form 0000-0000-0000-0000.',
  };
}

function plainOrcid(v) {
  return String(v || '').replace(/^https?:\/\/orcid\.org\//i, '').toUpperCase();
}

async function renderRegister(ctx) {
  const next = safeNext(ctx.query.get('next'));
  let consent = { version: 0 };
  try {
    consent = await api('GET', EP.consent);
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  const version = Number(consent.version) || 0;
  const consentLabel = [
    'I have read and accept the ',
    h('a', { href: '/privacy', target: '_blank', rel: 'noopener' }, 'privacy notice'),
    version ? ' (version ' + version + ')' : '',
    '.',
  ];
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
      { name: 'affiliation', label: 'Affiliation', required: false, autocomplete: 'organization', maxLength: 300 },
      orcidField(''),
      { name: 'bio', label: 'Short biography', type: 'textarea', required: false, maxLength: 5000, rows: 4 },
      {
        name: 'consent', type: 'checkbox', required: true, label: 'I accept the privacy notice',
        labelNodes: consentLabel, requiredMessage: 'Please accept the privacy notice to create an account.',
        aliases: ['consentVersion'],
      },
    ],
    onSubmit: async (values) => {
      await api('POST', EP.register, {
        name: values.name, email: values.email, password: values.password,
        affiliation: values.affiliation, orcid: plainOrcid(values.orcid), bio: values.bio,
        consent: values.consent, consentVersion: version,
      });
      navigate('/check-email?email=' + encodeURIComponent(values.email), { replace: true });
    },
  });
  return narrowPanel('register', 'Create an account', null,
    form,
    h('p', { class: 'form-footer' }, 'Already registered? ', h('a', { href: withNext('/login', next) }, 'Log in'), '.'));
}

function renderCheckEmail(ctx) {
  const email = ctx.query.get('email') || '';
  const resend = formView({
    id: 'resend-form',
    submitLabel: 'Send the link again',
    busyLabel: 'Sending…',
    className: 'form-plain',
    fields: [{ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', value: email, maxLength: 254 }],
    onSubmit: async (values) => {
      await api('POST', EP.resendVerification, { email: values.email });
      return 'If an account with that address waits for verification, a new link is on its way.';
    },
  });
  return narrowPanel('check-email', 'Check your e-mail', null,
    messageBox('success', email
      ? 'We sent a verification link to ' + email + '. Open it to activate your account.'
      : 'We sent you a verification link. Open it to activate your account.'),
    h('p', null, 'The link works once and expires after a while. Nothing arrived? Check your spam folder, or ask for a new link.'),
    resend,
    h('p', { class: 'form-footer' }, 'Verified already? ', h('a', { href: '/login' }, 'Log in'), '.'));
}

/* A page that spends a mailed token: /verify, /confirm-email, /erasure/confirm. */
function tokenPage({ id, title, endpoint, busy, success, after, confirmLabel, explain }) {
  return async (ctx) => {
    const token = ctx.query.get('token') || '';
    if (!token) {
      return narrowPanel(id, title, null,
        messageBox('error', 'This link is incomplete: it has no token. Open the link from the e-mail again, or copy all of it.'));
    }
    const run = async (box) => {
      box.replaceChildren(h('p', { class: 'muted', role: 'status' }, busy));
      try {
        await api('POST', endpoint, { token });
        if (after) await after();
        box.replaceChildren(messageBox('success', success.text), success.link ? h('p', null, success.link()) : null);
      } catch (err) {
        box.replaceChildren(messageBox('error', err.message, err.requestId ? h('p', { class: 'request-id' }, 'Reference: ' + err.requestId) : null),
          h('p', null, h('a', { href: '/' }, 'Go to the home page')));
      }
    };
    const box = h('div', { class: 'token-result', id: id + '-result' });
    if (confirmLabel) {
      /* Destructive: do nothing until the person says so on this page. */
      box.append(h('p', null, explain),
        h('button', { type: 'button', class: 'btn btn-danger', onclick: () => run(box) }, confirmLabel));
    } else {
      run(box);
    }
    return narrowPanel(id, title, null, box);
  };
}

const renderVerify = tokenPage({
  id: 'verify',
  title: 'Verify your e-mail address',
  endpoint: EP.verifyEmail,
  busy: 'Checking your link…',
  success: {
    text: 'Your e-mail address is verified. You can now log in.',
    link: () => (state.user ? h('a', { href: '/me' }, 'Go to your profile') : h('a', { href: '/login', class: 'btn btn-primary' }, 'Log in')),
  },
});

const renderConfirmEmail = tokenPage({
  id: 'confirm-email',
  title: 'Confirm your new e-mail address',
  endpoint: EP.confirmEmail,
  busy: 'Confirming…',
  after: async () => { if (state.user) await refreshMe(); },
  success: {
    text: 'Your e-mail address has been changed.',
    link: () => (state.user ? h('a', { href: '/me' }, 'Go to your profile') : h('a', { href: '/login' }, 'Log in')),
  },
});

const renderConfirmErasure = tokenPage({
  id: 'erasure-confirm',
  title: 'Erase your account',
  endpoint: EP.confirmErasure,
  busy: 'Erasing your personal data…',
  confirmLabel: 'Erase my account',
  explain: 'This removes your name, e-mail address, affiliation, ORCID iD and biography and ends every session. ' +
    'Published work keeps its author list as published. This cannot be undone.',
  after: async () => { setUser(null, false); },
  success: { text: 'Your personal data has been erased and your account closed. Goodbye.', link: () => h('a', { href: '/' }, 'Go to the home page') },
});

function renderForgot() {
  const form = formView({
    id: 'forgot-form',
    submitLabel: 'Send reset link',
    busyLabel: 'Sending…',
    fields: [{ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', maxLength: 254 }],
    onSubmit: async (values) => {
      await api('POST', EP.forgotPassword, { email: values.email });
      return 'If an account uses ' + values.email + ', we have sent it a link to choose a new password. The link works once and expires in an hour.';
    },
  });
  return narrowPanel('forgot', 'Forgot your password?', 'Enter your e-mail address and we will send you a link to choose a new password.',
    form, h('p', { class: 'form-footer' }, h('a', { href: '/login' }, 'Back to log in')));
}

/* /reset and /invitation: a mailed token plus a new password. */
function passwordTokenPage({ id, title, lead, endpoint, submitLabel, success, field }) {
  return (ctx) => {
    const token = ctx.query.get('token') || '';
    if (!token) {
      return narrowPanel(id, title, null,
        messageBox('error', 'This link is incomplete: it has no token. Open the link from the e-mail again, or copy all of it.'));
    }
    const form = formView({
      id: id + '-form',
      submitLabel,
      busyLabel: 'Saving…',
      fields: [
        { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', minLength: 8,
          hint: 'At least 8 characters.', aliases: ['newPassword'] },
        { name: 'confirm', label: 'Repeat the new password', type: 'password', autocomplete: 'new-password',
          match: 'password', matchMessage: 'The passwords do not match.' },
      ],
      onSubmit: async (values) => {
        try {
          await api('POST', endpoint, { token, [field]: values.password });
        } catch (err) {
          if (err instanceof ApiError && normaliseField(err.field) === 'token') err.field = '';
          throw err;
        }
        setUser(null, false);
        state.flash = { text: success, kind: 'success' };
        navigate('/login', { replace: true });
      },
    });
    return narrowPanel(id, title, lead, form);
  };
}

const renderReset = passwordTokenPage({
  id: 'reset', title: 'Choose a new password', lead: null, endpoint: EP.resetPassword,
  submitLabel: 'Set new password', field: 'newPassword',
  success: 'Your password has been changed. Please log in with the new one.',
});

const renderInvitation = passwordTokenPage({
  id: 'invitation', title: 'Welcome! Set your password',
  lead: 'You were invited to the journal. Choose a password to finish creating your account.',
  endpoint: EP.acceptInvitation, submitLabel: 'Set password and continue', field: 'password',
  success: 'Your account is ready. Please log in.',
});

async function afterLogin(next) {
  const user = await refreshMe();
  if (!user) {
    /* Logged in, yet the next request is anonymous: the browser did not keep the cookie
     * (e.g. a Secure cookie on plain http). Say so instead of looping. */
    throw new ApiError(0, 'no_session',
      'You were logged in, but your browser did not keep the session. Check that cookies are allowed for this site.');
  }
  navigate(next, { replace: true });
  if (state.consentRequired) openConsentPrompt();
}

async function logout() {
  try {
    await api('POST', EP.logout, {});
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showFlash(err.message, 'error');
      return;
    }
  }
  if (consentPrompt) consentPrompt.close();
  setUser(null, false);
  state.flash = { text: 'You have been logged out.', kind: 'info' };
  navigate('/');
}

/* ---------------------------------------------------------------------------------------- */
/* Profile                                                                                  */
/* ---------------------------------------------------------------------------------------- */

function section(id, title, ...content) {
  return h('section', { class: 'section', 'aria-labelledby': id + '-title', id },
    h('h3', { id: id + '-title' }, title), content);
}

async function renderMe() {
  const user = await refreshMe();
  if (!user) {
    navigate('/login?next=%2Fme', { replace: true });
    return null;
  }
  const roles = rolesOf(user);
  const details = h('dl', { class: 'details' },
    h('dt', null, 'Name'), h('dd', { 'data-field': 'name' }, user.name || ''),
    h('dt', null, 'Email'), h('dd', { 'data-field': 'email' }, user.email || '',
      user.verified === false ? h('span', { class: 'badge badge-warn' }, 'not verified') : null),
    user.pendingEmail ? [h('dt', null, 'Pending e-mail'), h('dd', { 'data-field': 'pending-email' },
      user.pendingEmail, h('span', { class: 'muted' }, ' (waiting for confirmation from that address)'))] : null,
    h('dt', null, 'Affiliation'), h('dd', { 'data-field': 'affiliation' }, user.affiliation || '—'),
    h('dt', null, 'ORCID iD'), h('dd', { 'data-field': 'orcid' }, user.orcid
      ? h('a', { href: 'https://orcid.org/' + user.orcid, rel: 'noopener noreferrer' }, user.orcid) : '—'),
    h('dt', null, 'Roles'), h('dd', { 'data-field': 'roles' },
      roles.length ? h('ul', { class: 'tags' }, roles.map((r) => h('li', { class: 'tag' }, r))) : 'None'),
    user.createdAtMs ? [h('dt', null, 'Member since'), h('dd', { 'data-field': 'created' }, formatDate(user.createdAtMs))] : null);

  const profileForm = formView({
    id: 'profile-form',
    submitLabel: 'Save profile',
    busyLabel: 'Saving…',
    fields: [
      { name: 'name', label: 'Name', autocomplete: 'name', maxLength: 200, value: user.name },
      { name: 'affiliation', label: 'Affiliation', required: false, autocomplete: 'organization', maxLength: 300, value: user.affiliation },
      orcidField(user.orcid),
      { name: 'bio', label: 'Short biography', type: 'textarea', required: false, maxLength: 5000, value: user.bio },
      {
        name: 'theme', label: 'Theme', type: 'select', required: false, noOptionalMark: true, value: user.theme || '',
        /* An empty theme keeps the stored one, so "follow my system" is offered only while the
         * account has none stored. */
        options: [...(user.theme ? [] : [['', 'Follow my system (light or dark)']]), ...THEMES],
        hint: 'How these pages look to you.',
      },
    ],
    onSubmit: async (values) => {
      const data = await api('PATCH', EP.profile, {
        name: values.name, affiliation: values.affiliation, orcid: plainOrcid(values.orcid),
        bio: values.bio, theme: values.theme,
      });
      const updated = data && data.user ? data.user : null;
      if (updated) setUser(updated, Boolean(data.consentRequired));
      else await refreshMe();
      state.flash = { text: 'Your profile has been saved.', kind: 'success' };
      render();
    },
  });

  const emailForm = formView({
    id: 'email-form',
    submitLabel: 'Change e-mail',
    busyLabel: 'Sending…',
    fields: [
      { name: 'newEmail', label: 'New e-mail address', type: 'email', autocomplete: 'email', maxLength: 254 },
      { name: 'password', label: 'Current password', type: 'password', autocomplete: 'current-password' },
    ],
    onSubmit: async (values, form) => {
      await api('POST', EP.changeEmail, { newEmail: values.newEmail, password: values.password });
      form.reset();
      return 'We sent a confirmation link to ' + values.newEmail + '. Your address changes when you open it.';
    },
  });

  const passwordForm = formView({
    id: 'password-form',
    submitLabel: 'Change password',
    busyLabel: 'Saving…',
    fields: [
      { name: 'currentPassword', label: 'Current password', type: 'password', autocomplete: 'current-password' },
      { name: 'newPassword', label: 'New password', type: 'password', autocomplete: 'new-password', minLength: 8, hint: 'At least 8 characters.' },
      { name: 'confirm', label: 'Repeat the new password', type: 'password', autocomplete: 'new-password', match: 'newPassword', matchMessage: 'The passwords do not match.' },
    ],
    onSubmit: async (values, form) => {
      await api('POST', EP.changePassword, { currentPassword: values.currentPassword, newPassword: values.newPassword });
      form.reset();
      return 'Your password has been changed. Your other sessions have been signed out.';
    },
  });

  const dataStatus = h('div', { class: 'data-status', role: 'status' });
  const dataAlert = h('div', { class: 'data-alert', role: 'alert' });
  const say = (kind, text) => {
    dataStatus.replaceChildren();
    dataAlert.replaceChildren();
    (kind === 'error' ? dataAlert : dataStatus).append(messageBox(kind === 'error' ? 'error' : 'success', text, null, true));
  };

  const exportButton = h('button', { type: 'button', class: 'btn btn-secondary', id: 'export-data' }, 'Download my data');
  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    try {
      const name = await downloadExport();
      say('success', 'Your data has been downloaded as ' + name + '.');
    } catch (err) {
      say('error', err.message);
    } finally {
      exportButton.disabled = false;
    }
  });

  const withdrawButton = h('button', { type: 'button', class: 'btn btn-secondary', id: 'withdraw-consent' }, 'Withdraw consent');
  withdrawButton.addEventListener('click', async () => {
    const ok = await confirmDialog({
      id: 'withdraw-dialog',
      title: 'Withdraw your consent?',
      text: ['We will record that you withdrew your consent to the privacy notice. ' +
        'While it is withdrawn you will be asked to accept the notice again before you can keep using your account.',
      'If you want your personal data removed, request erasure instead.'],
      confirmLabel: 'Withdraw consent',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('POST', EP.withdrawConsent, {});
      await refreshMe();
      say('success', 'Your consent has been withdrawn.');
      if (state.consentRequired) openConsentPrompt();
    } catch (err) {
      say('error', err.message);
    }
  });

  const erasureButton = h('button', { type: 'button', class: 'btn btn-danger', id: 'request-erasure' }, 'Request erasure');
  erasureButton.addEventListener('click', () => erasureDialog(user, say));

  let verifyNotice = null;
  if (user.verified === false) {
    const resend = h('button', { type: 'button', class: 'btn btn-small', id: 'resend-verification' }, 'Send the link again');
    const said = h('div', { role: 'status', class: 'verify-status' });
    resend.addEventListener('click', async () => {
      resend.disabled = true;
      try {
        await api('POST', EP.resendVerification, { email: '' });
        said.replaceChildren(h('p', null, 'A new verification link is on its way to ' + user.email + '.'));
      } catch (err) {
        said.replaceChildren(h('p', { class: 'field-error' }, err.message));
        resend.disabled = false;
      }
    });
    verifyNotice = h('div', { class: 'message', id: 'verify-notice' },
      h('p', null, 'Please verify your e-mail address: open the link we sent to ' + user.email + '.'),
      resend, said);
  }

  const consentLine = user.consentVersion
    ? 'You accepted version ' + user.consentVersion + ' of the privacy notice.'
    : 'You have not accepted a version of the privacy notice.';

  return h('div', { class: 'page-profile' },
    pageHeader('Your profile', 'Signed in as ' + (user.name || user.email || 'you') + '.', 'me-title'),
    verifyNotice,
    h('div', { class: 'profile-grid' },
      h('div', { class: 'profile-main' },
        details,
        section('profile-edit', 'Edit profile', profileForm),
        section('email-change', 'Change e-mail address',
          h('p', { class: 'muted' }, 'We send a confirmation link to the new address; the change takes effect when you open it.'),
          emailForm),
        section('password-change', 'Change password', passwordForm)),
      h('div', { class: 'profile-side' },
        section('your-data', 'Your data and privacy',
          dataStatus, dataAlert,
          h('p', null, 'Download everything we hold about you as one JSON file.'),
          h('p', null, exportButton),
          h('p', null, consentLine, ' ', h('a', { href: '/privacy' }, 'Read the privacy notice'), '.'),
          h('p', null, withdrawButton),
          h('p', null, 'Erasure removes your personal data for good. We e-mail you a link to confirm it.'),
          h('p', null, erasureButton)))));
}

/* GET /api/me/export as a file. Resolves to the file name. */
async function downloadExport() {
  let res;
  try {
    res = await fetch(EP.exportData, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  const text = await res.text();
  if (!res.ok) {
    let e = {};
    try {
      e = JSON.parse(text).error || {};
    } catch {
      /* not JSON: the fallback message below says enough */
    }
    throw new ApiError(res.status, e.code || 'http_' + res.status, e.message || fallbackMessage(res.status), e.field, e.requestId);
  }
  let name = '';
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="?([^";]+)"?/i.exec(cd);
  if (m) name = m[1];
  let body = text;
  /* Without an attachment header the API answers {json, filename}. */
  if (!m) {
    try {
      const data = JSON.parse(text);
      if (data && typeof data.json === 'string') {
        body = data.json;
        name = data.filename || '';
      }
    } catch {
      /* keep the body as it came */
    }
  }
  if (!/^[\w.-]+$/.test(name)) name = 'my-data.json';
  const url = URL.createObjectURL(new Blob([body], { type: 'application/json' }));
  const a = h('a', { href: url, download: name, class: 'visually-hidden' }, 'download');
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}

function erasureDialog(user, say) {
  const form = formView({
    id: 'erasure-form',
    submitLabel: 'Send confirmation e-mail',
    busyLabel: 'Sending…',
    className: 'form-plain',
    submitClass: 'btn-danger',
    fields: user.hasPassword === false ? [] : [
      { name: 'password', label: 'Current password', type: 'password', autocomplete: 'current-password' },
    ],
    secondary: h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => d.close() }, 'Cancel'),
    onSubmit: async (values) => {
      await api('POST', EP.requestErasure, { password: values.password || '' });
      d.close();
      say('success', 'We sent a confirmation link to ' + user.email + '. Your data is erased when you open it.');
    },
  });
  const d = dialog({
    id: 'erasure-dialog',
    title: 'Erase your account?',
    body: [
      h('p', null, 'When you confirm from the e-mail we send you:'),
      h('ul', null,
        h('li', null, 'your name, e-mail address, affiliation, ORCID iD and biography are removed or anonymised in every part of the journal;'),
        h('li', null, 'you are signed out everywhere and cannot log in again;'),
        h('li', null, 'published articles keep their author list as published, and anonymous records of reviews and decisions stay.')),
      h('p', null, h('strong', null, 'This cannot be undone.'), ' Consider downloading your data first.'),
      form,
    ],
  });
}

/* ---------------------------------------------------------------------------------------- */
/* Privacy                                                                                  */
/* ---------------------------------------------------------------------------------------- */

async function renderPrivacy() {
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

/* ---------------------------------------------------------------------------------------- */
/* Admin                                                                                    */
/* ---------------------------------------------------------------------------------------- */

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== undefined && v !== null && v !== false) u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

function userStatus(u) {
  if (u.erased) return ['erased', 'Erased'];
  if (u.deactivated) return ['deactivated', 'Deactivated'];
  if (!u.hasPassword && !u.verified) return ['invited', 'Invited'];
  if (!u.verified) return ['unverified', 'Unverified'];
  return ['active', 'Active'];
}

function statusBadge(u) {
  const [kind, text] = userStatus(u);
  return h('span', { class: 'badge badge-' + kind, 'data-status': kind }, text);
}

/*
 * pager({ load, renderItems }) -> { el, reload }: keyset paging with Previous/Next.
 *   load(cursor) resolves to { items, page: { nextCursor, total } }.
 */
function pager({ id, load, renderItems, label }) {
  let cursors = ['']; /* cursors[i] loads page i */
  let offsets = [0]; /* offsets[i]: how many items come before page i */
  let index = 0;
  let seq = 0;
  const body = h('div', { class: 'pager-body', id: id + '-body' });
  const info = h('p', { class: 'pager-info muted', role: 'status', id: id + '-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: id + '-prev' }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: id + '-next' }, 'Next →');
  const nav = h('nav', { class: 'pager', 'aria-label': label + ' pages' }, prev, info, next);
  const el = h('div', { class: 'pager-wrap' }, body, nav);

  async function show() {
    const mine = ++seq;
    el.setAttribute('aria-busy', 'true');
    prev.disabled = true;
    next.disabled = true;
    try {
      const r = await load(cursors[index]);
      if (mine !== seq) return;
      const items = r.items || [];
      body.replaceChildren(renderItems(items));
      const nextCursor = r.page && r.page.nextCursor ? r.page.nextCursor : '';
      cursors = cursors.slice(0, index + 1);
      offsets = offsets.slice(0, index + 1);
      if (nextCursor) {
        cursors.push(nextCursor);
        offsets.push(offsets[index] + items.length);
      }
      prev.disabled = index === 0;
      next.disabled = !nextCursor;
      const total = r.page && Number(r.page.total) ? Number(r.page.total) : 0;
      const first = offsets[index] + 1;
      info.textContent = 'Page ' + (index + 1) +
        (items.length ? ' · ' + first + '–' + (offsets[index] + items.length) + (total ? ' of ' + total : '') : ' · nothing found');
    } catch (err) {
      if (mine !== seq) return;
      body.replaceChildren(messageBox('error', err.message));
      info.textContent = '';
      prev.disabled = index === 0;
    } finally {
      if (mine === seq) el.removeAttribute('aria-busy');
    }
  }
  prev.addEventListener('click', () => { if (index > 0) { index--; show(); } });
  next.addEventListener('click', () => { if (cursors[index + 1]) { index++; show(); } });
  return {
    el,
    reload() {
      cursors = [''];
      offsets = [0];
      index = 0;
      return show();
    },
  };
}

const PAGE_SIZE = 25;

function renderAdminUsers(ctx) {
  const q = ctx.query;
  const filters = {
    query: q.get('q') || '',
    role: ROLES.includes(q.get('role')) ? q.get('role') : '',
    status: ['active', 'deactivated', 'unverified'].includes(q.get('status')) ? q.get('status') : '',
    sort: ['name', 'email', 'created'].includes(q.get('sort')) ? q.get('sort') : 'name',
    dir: q.get('dir') === 'desc' ? 'desc' : 'asc',
  };

  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
  const search = h('input', { id: 'users-q', type: 'search', name: 'q', autocomplete: 'off', maxlength: 200, placeholder: 'Name, e-mail or affiliation' });
  search.value = filters.query;
  const role = h('select', { id: 'users-role', name: 'role' }, h('option', { value: '' }, 'Any role'), ROLES.map((r) => h('option', { value: r }, r)));
  role.value = filters.role;
  const status = h('select', { id: 'users-status', name: 'status' },
    [['', 'Any status'], ['active', 'Active'], ['deactivated', 'Deactivated'], ['unverified', 'Unverified']].map(([v, t]) => h('option', { value: v }, t)));
  status.value = filters.status;
  const sort = h('select', { id: 'users-sort', name: 'sort' },
    [['name', 'Name'], ['email', 'E-mail'], ['created', 'Created']].map(([v, t]) => h('option', { value: v }, t)));
  sort.value = filters.sort;
  const dir = h('select', { id: 'users-dir', name: 'dir' }, h('option', { value: 'asc' }, 'Ascending'), h('option', { value: 'desc' }, 'Descending'));
  dir.value = filters.dir;

  const table = (users) => {
    if (!users.length) return h('p', { class: 'empty' }, 'No users match these filters.');
    return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'users-table' },
      h('caption', { class: 'visually-hidden' }, 'Users'),
      h('thead', null, h('tr', null, [['Name', 'name'], ['E-mail', 'email'], ['Roles'], ['Status'], ['Created', 'created']].map(([t, key]) => {
        if (!key) return h('th', { scope: 'col' }, t);
        const active = filters.sort === key;
        const next = active && filters.dir === 'asc' ? 'desc' : 'asc';
        /* A header sorts by its column; again reverses the order. */
        return h('th', { scope: 'col', 'aria-sort': active ? (filters.dir === 'asc' ? 'ascending' : 'descending') : false },
          h('button', {
            type: 'button', class: 'sort-button', 'data-sort': key,
            onclick: async () => {
              sort.value = key;
              dir.value = next;
              await apply();
              const again = document.querySelector('.sort-button[data-sort="' + key + '"]');
              if (again) again.focus(); /* the table was redrawn: keep the keyboard's place */
            },
          }, t, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (filters.dir === 'asc' ? ' ▲' : ' ▼') : ''),
          h('span', { class: 'visually-hidden' }, active ? ', sorted ' + (filters.dir === 'asc' ? 'ascending' : 'descending') : ', sort')));
      }))),
      h('tbody', null, users.map((u) => h('tr', { 'data-user-id': u.id },
        h('td', { 'data-label': 'Name' }, h('a', { href: '/admin/users/' + encodeURIComponent(u.id) }, u.name || '(no name)')),
        h('td', { 'data-label': 'E-mail', class: 'cell-email' }, u.email),
        h('td', { 'data-label': 'Roles' }, rolesOf(u).length ? h('ul', { class: 'tags' }, rolesOf(u).map((r) => h('li', { class: 'tag' }, r))) : '—'),
        h('td', { 'data-label': 'Status' }, statusBadge(u)),
        h('td', { 'data-label': 'Created' }, formatDate(u.createdAtMs)))))));
  };

  const list = pager({
    id: 'users-pager',
    label: 'Users',
    load: async (cursor) => {
      const r = await api('GET', EP.users + qs({
        query: filters.query, role: filters.role, status: filters.status, sort: filters.sort,
        desc: filters.dir === 'desc' ? 'true' : '', limit: PAGE_SIZE, cursor,
      }));
      return { items: r.users || [], page: r.page };
    },
    renderItems: table,
  });

  const apply = (event) => {
    if (event) event.preventDefault();
    filters.query = search.value.trim();
    filters.role = role.value;
    filters.status = status.value;
    filters.sort = sort.value;
    filters.dir = dir.value;
    history.replaceState(null, '', '/admin/users' + qs({
      q: filters.query, role: filters.role, status: filters.status,
      sort: filters.sort === 'name' ? '' : filters.sort, dir: filters.dir === 'asc' ? '' : filters.dir,
    }));
    return list.reload();
  };
  for (const s of [role, status, sort, dir]) s.addEventListener('change', apply);
  let timer = 0;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 300);
  });

  const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter users', onsubmit: apply },
    field('users-q', 'Search', search), field('users-role', 'Role', role), field('users-status', 'Status', status),
    field('users-sort', 'Sort by', sort), field('users-dir', 'Order', dir),
    h('div', { class: 'filters-actions' }, h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Search')));

  list.reload();
  return h('section', { class: 'panel panel-wide', 'aria-labelledby': 'users-title' },
    h('div', { class: 'page-header page-header-row' },
      h('h2', { class: 'page-title', id: 'users-title', tabindex: '-1' }, 'Users'),
      h('a', { href: '/admin/users/new', class: 'btn btn-primary', id: 'new-user' }, 'Create user')),
    filterForm, list.el);
}

function renderAdminNewUser() {
  const roleBoxes = ROLES.map((r) => {
    const id = 'new-user-role-' + r;
    const box = h('input', { type: 'checkbox', id, name: 'roles', value: r });
    box.checked = r === 'author';
    return { r, box, el: h('div', { class: 'check-row' }, box, h('label', { for: id }, r)) };
  });
  const form = formView({
    id: 'new-user-form',
    submitLabel: 'Create and send invitation',
    busyLabel: 'Creating…',
    fields: [
      { name: 'name', label: 'Name', maxLength: 200 },
      { name: 'email', label: 'Email', type: 'email', maxLength: 254 },
      { name: 'affiliation', label: 'Affiliation', required: false, maxLength: 300 },
      orcidField(''),
      { name: 'bio', label: 'Short biography', type: 'textarea', required: false, maxLength: 5000 },
    ],
    extra: h('fieldset', { class: 'fieldset' }, h('legend', null, 'Roles'), roleBoxes.map((x) => x.el)),
    onSubmit: async (values) => {
      const roles = roleBoxes.filter((x) => x.box.checked).map((x) => x.r);
      const r = await api('POST', EP.users, {
        name: values.name, email: values.email, roles, affiliation: values.affiliation,
        orcid: plainOrcid(values.orcid), bio: values.bio,
      });
      state.flash = { text: 'The account was created and an invitation was sent to ' + values.email + '.', kind: 'success' };
      navigate(r && r.user ? '/admin/users/' + encodeURIComponent(r.user.id) : '/admin/users');
    },
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'new-user-title' },
    pageHeader('Create user', 'The person receives an e-mail with a link to set their own password.', 'new-user-title'),
    form, h('p', { class: 'form-footer' }, h('a', { href: '/admin/users' }, 'Back to users')));
}

async function renderAdminUser(ctx) {
  const id = ctx.params.id;
  const r = await api('GET', EP.user(id));
  const u = r.user;
  const status = h('div', { class: 'action-status', role: 'status', id: 'user-action-status' });
  const alert = h('div', { class: 'action-alert', role: 'alert', id: 'user-action-alert' });
  const say = (kind, text) => {
    status.replaceChildren();
    alert.replaceChildren();
    (kind === 'error' ? alert : status).append(messageBox(kind, text, null, true));
  };
  const reload = (msg) => {
    state.flash = { text: msg, kind: 'success' };
    render();
  };

  const editForm = formView({
    id: 'user-edit-form',
    submitLabel: 'Save changes',
    busyLabel: 'Saving…',
    fields: [
      { name: 'name', label: 'Name', maxLength: 200, value: u.name },
      { name: 'email', label: 'Email', type: 'email', maxLength: 254, value: u.email,
        hint: 'Changed at once and marked unverified.' },
      { name: 'affiliation', label: 'Affiliation', required: false, maxLength: 300, value: u.affiliation },
      orcidField(u.orcid),
      { name: 'bio', label: 'Short biography', type: 'textarea', required: false, maxLength: 5000, value: u.bio },
    ],
    onSubmit: async (values) => {
      await api('PATCH', EP.user(id), {
        name: values.name, email: values.email, affiliation: values.affiliation,
        orcid: plainOrcid(values.orcid), bio: values.bio,
      });
      reload('The changes were saved.');
    },
  });

  const roleSwitches = ROLES.map((role) => {
    const boxId = 'role-' + role;
    const box = h('input', { type: 'checkbox', role: 'switch', id: boxId, 'data-role': role, disabled: u.erased || false });
    box.checked = rolesOf(u).includes(role);
    box.addEventListener('change', async () => {
      const grant = box.checked;
      box.disabled = true;
      try {
        await api(grant ? 'PUT' : 'DELETE', EP.userRole(id, role), {});
        say('success', (grant ? 'Granted the ' : 'Removed the ') + role + ' role.');
        if (state.user && state.user.id === id) await refreshMe();
      } catch (err) {
        box.checked = !grant;
        say('error', err.message);
      } finally {
        box.disabled = false;
      }
    });
    return h('div', { class: 'check-row switch-row' }, box, h('label', { for: boxId }, role));
  });

  const toggle = u.deactivated
    ? h('button', { type: 'button', class: 'btn btn-secondary', id: 'reactivate-user' }, 'Reactivate account')
    : h('button', { type: 'button', class: 'btn btn-secondary', id: 'deactivate-user' }, 'Deactivate account');
  toggle.addEventListener('click', async () => {
    if (!u.deactivated) {
      const ok = await confirmDialog({
        id: 'deactivate-dialog', title: 'Deactivate ' + (u.name || u.email) + '?',
        text: 'They are signed out at once and cannot log in until reactivated. Their submissions, reviews and published work stay.',
        confirmLabel: 'Deactivate', danger: true,
      });
      if (!ok) return;
    }
    try {
      await api('POST', u.deactivated ? EP.reactivate(id) : EP.deactivate(id), {});
      reload(u.deactivated ? 'The account was reactivated.' : 'The account was deactivated.');
    } catch (err) {
      say('error', err.message);
    }
  });

  const erase = h('button', { type: 'button', class: 'btn btn-danger', id: 'erase-user', disabled: u.erased || false }, 'Erase personal data');
  erase.addEventListener('click', async () => {
    const ok = await confirmDialog({
      id: 'erase-dialog', title: 'Erase ' + (u.name || u.email) + '?',
      text: ['Their name, e-mail address, affiliation, ORCID iD and biography are removed or anonymised in every part of the journal, and they are signed out for good.',
        'Published articles keep their author list as published. This cannot be undone.'],
      confirmLabel: 'Erase', danger: true,
    });
    if (!ok) return;
    try {
      await api('POST', EP.eraseUser(id), {});
      reload('The personal data was erased.');
    } catch (err) {
      say('error', err.message);
    }
  });

  return h('div', { class: 'page-user' },
    h('p', { class: 'breadcrumb' }, h('a', { href: '/admin/users' }, 'Users'), ' / ', u.name || u.email),
    h('div', { class: 'page-header' },
      h('h2', { class: 'page-title', id: 'user-title', tabindex: '-1' }, u.name || '(no name)', ' ', statusBadge(u)),
      h('p', { class: 'lead' }, u.email, u.pendingEmail ? ' (changing to ' + u.pendingEmail + ')' : '')),
    status, alert,
    h('div', { class: 'profile-grid' },
      h('div', { class: 'profile-main' },
        section('user-edit', 'Details', editForm)),
      h('div', { class: 'profile-side' },
        section('user-roles', 'Roles', h('fieldset', { class: 'fieldset' }, h('legend', { class: 'visually-hidden' }, 'Roles'), roleSwitches)),
        section('user-account', 'Account',
          h('dl', { class: 'details details-compact' },
            h('dt', null, 'Created'), h('dd', null, formatDate(u.createdAtMs, true) || '—'),
            h('dt', null, 'Last login'), h('dd', null, formatDate(u.lastLoginAtMs, true) || 'never'),
            h('dt', null, 'Consent'), h('dd', null, u.consentVersion ? 'version ' + u.consentVersion : 'none')),
          h('p', null, h('a', { href: '/admin/activity?user=' + encodeURIComponent(id) }, 'Activity of this user')),
          h('p', null, toggle), h('p', null, erase)))));
}

const ACTIVITY_KINDS = ['login', 'login_failed', 'logout', 'register', 'verify_email', 'consent', 'consent_withdrawn',
  'export', 'erasure_requested', 'erasure', 'role_granted', 'role_revoked', 'deactivated', 'reactivated',
  'password_changed', 'password_reset_requested', 'password_reset', 'email_change_requested', 'email_changed',
  'invited', 'invitation_accepted', 'user_created', 'user_updated', 'profile_updated', 'consent_published', 'privacy_updated'];

function dayStartMs(value, addDays) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value || '')) return 0;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + (addDays || 0)).getTime();
}

function renderAdminActivity(ctx) {
  const q = ctx.query;
  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
  const kind = h('select', { id: 'activity-kind', name: 'kind' }, h('option', { value: '' }, 'Any kind'),
    ACTIVITY_KINDS.map((k) => h('option', { value: k }, k.replace(/_/g, ' '))));
  kind.value = ACTIVITY_KINDS.includes(q.get('kind')) ? q.get('kind') : '';
  const user = h('input', { id: 'activity-user', name: 'user', type: 'text', autocomplete: 'off', maxlength: 64, spellcheck: 'false' });
  user.value = q.get('user') || '';
  const from = h('input', { id: 'activity-from', name: 'from', type: 'date' });
  from.value = q.get('from') || '';
  const to = h('input', { id: 'activity-to', name: 'to', type: 'date' });
  to.value = q.get('to') || '';

  const table = (entries) => {
    if (!entries.length) return h('p', { class: 'empty' }, 'No activity matches these filters.');
    return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'activity-table' },
      h('caption', { class: 'visually-hidden' }, 'Activity'),
      h('thead', null, h('tr', null, ['When', 'What', 'By', 'About', 'Address', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, entries.map((e) => h('tr', { 'data-kind': e.kind },
        h('td', { 'data-label': 'When', class: 'cell-when' }, formatDate(e.atMs, true)),
        h('td', { 'data-label': 'What' }, h('span', { class: 'badge badge-kind' }, e.kind.replace(/_/g, ' '))),
        h('td', { 'data-label': 'By' }, e.actorId ? h('a', { href: '/admin/users/' + encodeURIComponent(e.actorId) }, e.actorName || e.actorId) : '—'),
        h('td', { 'data-label': 'About' }, e.userId ? h('a', { href: '/admin/users/' + encodeURIComponent(e.userId) }, e.userName || e.userId) : '—'),
        h('td', { 'data-label': 'Address', class: 'cell-mono' }, e.clientAddr || '—'),
        h('td', { 'data-label': 'Details', class: 'cell-mono cell-details' }, detailsText(e.details)))))));
  };

  const list = pager({
    id: 'activity-pager',
    label: 'Activity',
    load: async (cursor) => {
      const r = await api('GET', EP.activity + qs({
        kind: kind.value, user_id: user.value.trim(), from_ms: dayStartMs(from.value) || '',
        to_ms: dayStartMs(to.value, 1) || '', limit: PAGE_SIZE, cursor,
      }));
      return { items: r.entries || [], page: r.page };
    },
    renderItems: table,
  });
  const apply = (event) => {
    if (event) event.preventDefault();
    history.replaceState(null, '', '/admin/activity' + qs({ kind: kind.value, user: user.value.trim(), from: from.value, to: to.value }));
    list.reload();
  };
  for (const c of [kind, from, to]) c.addEventListener('change', apply);
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter activity', onsubmit: apply },
    field('activity-kind', 'Kind', kind),
    field('activity-user', 'User id', user),
    field('activity-from', 'From', from), field('activity-to', 'To (inclusive)', to),
    h('div', { class: 'filters-actions' }, h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Filter')));
  list.reload();
  return h('section', { class: 'panel panel-wide', 'aria-labelledby': 'activity-title' },
    pageHeader('Activity', 'Sign-ins, registrations, consents, exports, erasures and account changes, newest first.', 'activity-title'),
    form, list.el);
}

function detailsText(details) {
  if (!details) return '';
  try {
    const o = JSON.parse(details);
    if (o && typeof o === 'object') {
      const parts = Object.entries(o).map(([k, v]) => k + ': ' + (typeof v === 'object' ? JSON.stringify(v) : String(v)));
      return parts.join(', ');
    }
  } catch {
    /* not JSON: show it as it is */
  }
  return String(details);
}

async function renderAdminConsent() {
  const [stats, consent, privacy] = await Promise.allSettled([
    api('GET', EP.consentStats), api('GET', EP.consent), api('GET', EP.privacy)]);
  const c = consent.status === 'fulfilled' ? consent.value : { version: 0, markdown: '', html: '' };
  const p = privacy.status === 'fulfilled' ? privacy.value : { markdown: '', html: '' };

  let statsBox;
  if (stats.status === 'fulfilled') {
    const s = stats.value;
    const users = Number(s.users) || 0;
    const acc = Number(s.acceptedCurrent) || 0;
    statsBox = h('dl', { class: 'stats', id: 'consent-stats' },
      h('div', null, h('dt', null, 'Current version'), h('dd', null, String(Number(s.currentVersion) || 0))),
      h('div', null, h('dt', null, 'Active users'), h('dd', null, String(users))),
      h('div', null, h('dt', null, 'Accepted the current version'), h('dd', null, acc + (users ? ' (' + Math.round((acc * 100) / users) + '%)' : ''))));
  } else {
    statsBox = messageBox('error', stats.reason.message);
  }

  const currentBox = h('div', { class: 'prose prose-box', id: 'consent-current' });
  renderSafeHtml(currentBox, c.html);
  if (!currentBox.childNodes.length) currentBox.append(h('p', { class: 'muted' }, 'No consent text has been published yet.'));

  const consentForm = formView({
    id: 'consent-form',
    submitLabel: 'Publish new version',
    busyLabel: 'Publishing…',
    fields: [
      { name: 'markdown', label: 'Consent text (Markdown)', type: 'textarea', rows: 10, maxLength: 100000, value: c.markdown || '' },
      { name: 'required', label: 'Existing users must accept this version before they can continue', type: 'checkbox', required: false, value: false,
        hint: 'When ticked, everyone who has not accepted it is asked to on their next request.' },
    ],
    onSubmit: async (values) => {
      const ok = await confirmDialog({
        id: 'publish-consent-dialog', title: 'Publish a new consent version?',
        text: values.required ? 'Every signed-in user will have to accept it before doing anything else.' : 'New registrations will accept this version.',
        confirmLabel: 'Publish',
      });
      if (!ok) return '';
      const v = await api('PUT', EP.publishConsent, { markdown: values.markdown, required: values.required });
      state.flash = { text: 'Version ' + v.version + ' of the consent text is published.', kind: 'success' };
      await refreshMe();
      render();
      return '';
    },
  });

  const preview = h('div', { class: 'prose prose-box', id: 'privacy-preview' });
  renderSafeHtml(preview, p.html);
  const privacyForm = formView({
    id: 'privacy-form',
    submitLabel: 'Save privacy policy',
    busyLabel: 'Saving…',
    fields: [{ name: 'markdown', label: 'Privacy policy (Markdown)', type: 'textarea', rows: 14, maxLength: 100000, value: p.markdown || '',
      hint: 'Markdown; raw HTML is not shown. The preview below updates after saving.' }],
    onSubmit: async (values) => {
      const saved = await api('PUT', EP.setPrivacy, { markdown: values.markdown });
      renderSafeHtml(preview, saved.html);
      return 'The privacy policy was saved.';
    },
  });

  return h('div', { class: 'page-consent' },
    pageHeader('Consent & privacy', 'The consent text people accept, and the privacy policy everyone can read.', 'consent-title'),
    section('consent-stats-section', 'Consent', statsBox,
      h('h4', null, 'Current text' + (Number(c.version) ? ' (version ' + c.version + (c.required ? ', required' : '') + ')' : '')), currentBox),
    section('consent-publish', 'Publish a new version', consentForm),
    section('privacy-edit', 'Privacy policy', privacyForm, h('h4', null, 'Preview'), preview,
      h('p', null, h('a', { href: '/privacy' }, 'Open the public privacy page'))));
}

async function renderAdminMailTemplates() {
  let r;
  try {
    r = await api('GET', EP.mailTemplates);
  } catch (err) {
    if (err.status === 404 || err.status === 405) {
      return h('section', { class: 'panel' }, pageHeader('Mail templates', null, 'mail-templates-title'),
        messageBox('info', 'Mail templates cannot be edited on this server yet.'));
    }
    throw err;
  }
  const templates = r.templates || [];
  return h('section', { class: 'panel', 'aria-labelledby': 'mail-templates-title' },
    pageHeader('Mail templates', 'Subjects and plain-text bodies of the mails we send. Placeholders in {{double braces}} are filled in when a mail is sent.', 'mail-templates-title'),
    templates.length ? templates.map((t) => section('tpl-' + t.key, t.key.replace(/_/g, ' '),
      t.updatedAt ? h('p', { class: 'muted' }, 'Last changed ' + t.updatedAt + (t.updatedBy ? '' : ' (default)')) : null,
      formView({
        id: 'tpl-form-' + t.key,
        submitLabel: 'Save template',
        busyLabel: 'Saving…',
        fields: [
          { name: 'subject', label: 'Subject', maxLength: 300, value: t.subject },
          { name: 'bodyText', label: 'Body', type: 'textarea', rows: 10, maxLength: 65536, value: t.bodyText, aliases: ['body_text', 'body'] },
        ],
        onSubmit: async (values) => {
          await api('PUT', EP.mailTemplate(t.key), { subject: values.subject, bodyText: values.bodyText });
          return 'The template was saved.';
        },
      }))) : h('p', { class: 'empty' }, 'There are no templates.'));
}

async function renderAdminDevMail(ctx) {
  const to = ctx.query.get('to') || '';
  const r = await api('GET', EP.devMail + qs({ to, limit: 100 }));
  const messages = r.messages || [];
  const filterInput = h('input', { id: 'devmail-to', name: 'to', type: 'email', autocomplete: 'off', maxlength: 254 });
  filterInput.value = to;
  const filter = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter caught mail', onsubmit: (e) => {
    e.preventDefault();
    navigate('/admin/dev-mail' + qs({ to: filterInput.value.trim() }), { replace: true });
  } },
  h('div', { class: 'field' }, h('label', { for: 'devmail-to' }, 'Recipient'), filterInput),
  h('div', { class: 'filters-actions' },
    h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Filter'),
    h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: 'devmail-refresh', onclick: () => render() }, 'Refresh'),
    h('button', { type: 'button', class: 'btn btn-danger btn-small', id: 'devmail-clear', onclick: async () => {
      const ok = await confirmDialog({ id: 'devmail-clear-dialog', title: 'Forget every caught message?', text: 'The catcher keeps nothing afterwards.', confirmLabel: 'Clear all', danger: true });
      if (!ok) return;
      try {
        await api('DELETE', EP.devMail, {});
        state.flash = { text: 'The caught mail was cleared.', kind: 'success' };
        render();
      } catch (err) {
        showFlash(err.message, 'error');
      }
    } }, 'Clear all')));

  const list = messages.length ? h('ol', { class: 'mail-list', id: 'devmail-list' }, messages.map((m) => h('li', { class: 'mail', 'data-mail-id': m.id },
    h('details', { class: 'mail-details', open: messages.length <= 3 || false },
      h('summary', null, h('span', { class: 'mail-subject' }, m.subject || '(no subject)'),
        h('span', { class: 'mail-meta muted' }, ' to ', m.to, ' · ', formatDate(m.receivedAtMs, true))),
      h('p', { class: 'mail-from muted' }, 'From ', m.from),
      h('pre', { class: 'mail-body' }, linkify(m.body || '')))))) : h('p', { class: 'empty' }, 'No mail has been caught' + (to ? ' for ' + to : '') + '.');

  return h('section', { class: 'panel panel-wide', 'aria-labelledby': 'devmail-title' },
    pageHeader('Dev mail', 'Messages caught by the local mail catcher (development only). Links in them work.', 'devmail-title'),
    filter, list);
}

/* A page a later release fills in; the route exists so navigation never dead-ends. */
function placeholder(title, text) {
  return () => h('section', { class: 'panel' },
    pageHeader(title, text),
    h('p', null, h('a', { href: '/' }, 'Back to the home page')));
}

/* A file upload on its own page; the submission forms embed the same widget (upload.js). */
function renderUpload() {
  return h('section', { class: 'panel' },
    pageHeader('Upload a file', 'Upload a manuscript: it stays private to you until you attach it to a submission.'),
    uploadWidget({ kind: 'manuscript', label: 'Manuscript file' }));
}

function renderNotFound() {
  return h('section', { class: 'panel' },
    pageHeader('Page not found', 'There is no page at this address.'),
    h('p', null, h('a', { href: '/' }, 'Go to the home page')));
}

function renderForbidden() {
  return h('section', { class: 'panel' },
    pageHeader('Access denied', 'Your account does not have the role this page needs.'),
    h('p', null, h('a', { href: '/me' }, 'Go to your profile')));
}

/* What a page that needs consent shows behind the prompt while consent is owed. */
function renderConsentWait() {
  return h('section', { class: 'panel' },
    pageHeader('Please accept the privacy notice', 'This page opens once you have accepted the current privacy notice.'));
}

function renderError(err) {
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

/* ---------------------------------------------------------------------------------------- */
/* Routes: the table IS the app's map. `:name` segments bind ctx.params.name.               */
/*   auth: 'user'  -> anonymous visitors go to /login?next=...                               */
/*   auth: 'guest' -> signed-in users go to /me                                              */
/*   roles: [...]  -> signed-in users holding none of them see "Access denied"               */
/*   consentFree   -> a signed-in page that works while consent is owed (others wait for it)  */
/* ---------------------------------------------------------------------------------------- */

const routes = [
  { path: '/', title: '', render: renderHome },
  { path: '/login', title: 'Log in', render: renderLogin, auth: 'guest' },
  { path: '/register', title: 'Create an account', render: renderRegister, auth: 'guest' },
  { path: '/check-email', title: 'Check your e-mail', render: renderCheckEmail },
  { path: '/verify', title: 'Verify your e-mail address', render: renderVerify },
  { path: '/forgot-password', title: 'Forgot your password?', render: renderForgot },
  { path: '/reset', title: 'Choose a new password', render: renderReset },
  { path: '/invitation', title: 'Set your password', render: renderInvitation },
  { path: '/confirm-email', title: 'Confirm your new e-mail address', render: renderConfirmEmail },
  { path: '/erasure/confirm', title: 'Erase your account', render: renderConfirmErasure },
  /* The addresses the users service writes into its mails, for the same pages. */
  { path: '/reset-password', title: 'Choose a new password', render: renderReset },
  { path: '/accept-invitation', title: 'Set your password', render: renderInvitation },
  { path: '/confirm-erasure', title: 'Erase your account', render: renderConfirmErasure },
  { path: '/privacy', title: 'Privacy policy', render: renderPrivacy },
  { path: '/me', title: 'Your profile', render: renderMe, auth: 'user', consentFree: true },
  { path: '/upload', title: 'Upload a file', render: renderUpload, auth: 'user' },
  { path: '/browse', title: 'Browse articles', render: placeholder('Browse articles', 'The article archive opens here soon.') },
  { path: '/issues', title: 'Issues', render: placeholder('Issues', 'Published issues will be listed here.') },
  { path: '/about', title: 'About', render: placeholder('About the journal', 'Aims, scope and editorial policies will appear here.') },
  { path: '/submissions', title: 'My submissions', render: placeholder('My submissions', 'Your manuscripts and their progress will be listed here.'), auth: 'user', roles: ['author'] },
  { path: '/submissions/new', title: 'New submission', render: placeholder('New submission', 'Online submission opens here soon.'), auth: 'user', roles: ['author'] },
  { path: '/reviews', title: 'Reviews', render: placeholder('Reviews', 'The manuscripts you are asked to review will be listed here.'), auth: 'user', roles: ['reviewer'] },
  { path: '/editorial', title: 'Editorial', render: placeholder('Editorial', 'The editorial desk opens here soon.'), auth: 'user', roles: ['editor'] },
  { path: '/admin/users', title: 'Users', render: renderAdminUsers, auth: 'user', roles: ['admin'] },
  { path: '/admin/users/new', title: 'Create user', render: renderAdminNewUser, auth: 'user', roles: ['admin'] },
  { path: '/admin/users/:id', title: 'User', render: renderAdminUser, auth: 'user', roles: ['admin'] },
  { path: '/admin/activity', title: 'Activity', render: renderAdminActivity, auth: 'user', roles: ['admin'] },
  { path: '/admin/consent', title: 'Consent & privacy', render: renderAdminConsent, auth: 'user', roles: ['admin'] },
  { path: '/admin/mail-templates', title: 'Mail templates', render: renderAdminMailTemplates, auth: 'user', roles: ['admin'] },
  { path: '/admin/dev-mail', title: 'Dev mail', render: renderAdminDevMail, auth: 'user', roles: ['admin'] },
];

/* The work links each role brings, in menu order. */
const ROLE_NAV = [
  { role: 'author', links: [['/submissions', 'My submissions'], ['/submissions/new', 'New submission']] },
  { role: 'reviewer', links: [['/reviews', 'Reviews']] },
  { role: 'editor', links: [['/editorial', 'Editorial']] },
  { role: 'admin', links: [['/admin/users', 'Users'], ['/admin/activity', 'Activity'], ['/admin/consent', 'Consent & privacy'],
    ['/admin/mail-templates', 'Mail templates'], ['/admin/dev-mail', 'Dev mail', 'devMail']] },
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
    try {
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    } catch {
      return null;
    }
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
  if (url.origin !== location.origin) return;
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
  closeUserMenu();

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
  markCurrentNav();
  showFlash(state.flash ? state.flash.text : '', state.flash ? state.flash.kind : '');
  state.flash = null;

  /* Move focus to the new page's heading so screen readers announce it; not on first load. */
  if (rendered && !openDialogs.length) {
    const heading = main.querySelector('h2');
    (heading || main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  rendered = true;
  if (state.consentRequired && state.user) openConsentPrompt();
}

function showFlash(text, kind) {
  const flash = document.getElementById('flash');
  flash.textContent = '';
  flash.className = 'flash';
  flash.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (!text) return;
  flash.classList.add('is-visible', 'flash-' + (kind || 'info'));
  flash.append(h('p', null, text));
}

function markCurrentNav() {
  for (const a of document.querySelectorAll('.nav a')) {
    const href = a.getAttribute('href');
    const here = href === location.pathname ||
      (href.startsWith('/admin/') && location.pathname.startsWith(href + '/') && href !== '/admin/users/new');
    if (here) a.setAttribute('aria-current', 'page');
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

function renderChrome() {
  renderAccountNav();
  renderWorkNav();
  markCurrentNav();
}

function closeUserMenu() {
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

/* ---------------------------------------------------------------------------------------- */
/* Start                                                                                    */
/* ---------------------------------------------------------------------------------------- */

async function boot() {
  document.addEventListener('click', onLinkClick);
  document.addEventListener('click', (event) => {
    const wrap = document.querySelector('.user-menu-wrap');
    if (wrap && !wrap.contains(event.target)) closeUserMenu();
  });
  window.addEventListener('popstate', () => render());

  const [site, me] = await Promise.allSettled([api('GET', EP.site), refreshMe()]);
  if (site.status === 'fulfilled' && site.value && typeof site.value.name === 'string' && site.value.name) {
    state.site = { ...site.value };
  }
  if (me.status === 'rejected') {
    /* Not a 401 (that is fulfilled with null): the sign-in could not be checked right now. */
    const why = me.reason instanceof ApiError ? me.reason.message : 'unknown error';
    state.flash = { text: 'Your sign-in could not be checked (' + why + '). Reload to try again.', kind: 'error' };
  }

  renderSiteName();
  renderChrome();
  await render();
  document.documentElement.dataset.ready = 'true';
}

boot();
