/*
 * pages/admin.js: the administrator's pages: users (list, create, one user with roles and
 * account actions), activity, consent and privacy texts, mail templates, and the dev mail
 * catcher's inbox.
 */

import { api, EP, qs } from '../api.js';
import { h, pageHeader, section, messageBox, formatDate, linkify, renderSafeHtml } from '../dom.js';
import { confirmDialog } from '../dialogs.js';
import { formView, orcidField, plainOrcid } from '../forms.js';
import { pager } from '../pager.js';
import { state, refreshMe, rolesOf, ROLES } from '../session.js';
import { navigate, render, showFlash } from '../router.js';

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

const PAGE_SIZE = 25;

export function renderAdminUsers(ctx) {
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

export function renderAdminNewUser() {
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

export async function renderAdminUser(ctx) {
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

const ACTIVITY_KINDS = ['login', 'login_failed', 'password_check_failed', 'logout', 'register', 'verify_email', 'consent', 'consent_withdrawn',
  'export', 'erasure_requested', 'erasure', 'role_granted', 'role_revoked', 'deactivated', 'reactivated',
  'password_changed', 'password_reset_requested', 'password_reset', 'email_change_requested', 'email_changed',
  'invited', 'invitation_accepted', 'invitation_declined', 'user_created', 'user_updated', 'profile_updated', 'consent_published', 'privacy_updated'];

function dayStartMs(value, addDays) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value || '')) return 0;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + (addDays || 0)).getTime();
}

export function renderAdminActivity(ctx) {
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

export async function renderAdminConsent() {
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

export async function renderAdminMailTemplates() {
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

export async function renderAdminDevMail(ctx) {
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
