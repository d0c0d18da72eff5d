/*
 * pages/account.js: a person's own account: log in, register, the pages that spend a mailed
 * token (verify, confirm an e-mail change or an erasure, reset a password, accept an
 * invitation), and the profile with its data and privacy controls.
 */

import { api, ApiError, EP, fallbackMessage } from '../api.js';
import { h, pageHeader, section, messageBox, formatDate } from '../dom.js';
import { confirmDialog, dialog } from '../dialogs.js';
import { formView, normaliseField, orcidField, plainOrcid } from '../forms.js';
import { state, refreshMe, setUser, rolesOf, THEMES } from '../session.js';
import { navigate, render, safeNext, withNext } from '../router.js';
import { openConsentPrompt } from '../consent.js';

function narrowPanel(id, title, lead, ...content) {
  return h('section', { class: 'panel narrow', 'aria-labelledby': id + '-title' },
    pageHeader(title, lead, id + '-title'), content);
}

export function renderLogin(ctx) {
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

export async function renderRegister(ctx) {
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

export function renderCheckEmail(ctx) {
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
      ? 'Check your mail at ' + email + '. We sent a verification link there: open it to activate your account.'
      : 'Check your mail. We sent you a verification link: open it to activate your account.'),
    /* The same page whether or not the address already had an account: the answer of the
     * registration does not tell, and neither may the page. */
    h('p', null, 'If the address already has an account, the message tells you how to sign in instead.'),
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

export const renderVerify = tokenPage({
  id: 'verify',
  title: 'Verify your e-mail address',
  endpoint: EP.verifyEmail,
  busy: 'Checking your link…',
  success: {
    text: 'Your e-mail address is verified. You can now log in.',
    link: () => (state.user ? h('a', { href: '/me' }, 'Go to your profile') : h('a', { href: '/login', class: 'btn btn-primary' }, 'Log in')),
  },
});

export const renderConfirmEmail = tokenPage({
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

export const renderConfirmErasure = tokenPage({
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

export function renderForgot() {
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

export const renderReset = passwordTokenPage({
  id: 'reset', title: 'Choose a new password', lead: null, endpoint: EP.resetPassword,
  submitLabel: 'Set new password', field: 'newPassword',
  success: 'Your password has been changed. Please log in with the new one.',
});

export const renderInvitation = passwordTokenPage({
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

export async function renderMe() {
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
