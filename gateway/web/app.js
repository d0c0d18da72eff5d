/*
 * EasyJournal browser app: ES modules with no build step, served by the gateway as static files
 * under a strict Content-Security-Policy (no inline script or style, no eval). This file is the
 * entry point: the route table (the app's map) and start-up. index.html preloads every module
 * (<link rel="modulepreload">), so the browser fetches them all at once.
 *
 * The modules, lower ones first: a module imports only from those above it (pages/errors.js,
 * the router's own pages, only from api.js and dom.js); nothing imports app.js.
 *   api.js       the API client: EP (every path), api(), ApiError, qs(); CSRF by JSON only
 *   dom.js       h() and the blocks of a page (pageHeader, section, messageBox, safe HTML)
 *   session.js   state, the signed-in user (refreshMe, setUser), roles, the theme
 *   dialogs.js   modal dialogs and confirmDialog()
 *   forms.js     formView(): accessible forms that show API errors at their field
 *   pager.js     Previous/Next paging over keyset cursors
 *   router.js    navigation over the route table, redirects, flash, focus
 *   chrome.js    header, user menu, work links per role, logout
 *   consent.js   the blocking consent prompt
 *   upload.js    the file upload widget
 *   pages/<area>.js  one file per area (public, account, invitations, admin, files; errors for
 *                the router):
 *                each exports render functions, which the table below maps to paths
 * A new page: a render function in its area's file, one row in `routes` (and its styles in
 * pages/<area>.css). A new area: pages/<area>.js and .css, plus their <link> lines in index.html.
 */

import { api, ApiError, EP, onConsentRequired } from './api.js';
import { state, refreshMe, onUserChange } from './session.js';
import { startRouter, render } from './router.js';
import { renderChrome, renderSiteName, markCurrentNav, closeUserMenu } from './chrome.js';
import { openConsentPrompt, closeConsentPrompt } from './consent.js';
import { renderHome, renderPrivacy, placeholder } from './pages/public.js';
import {
  renderLogin, renderRegister, renderCheckEmail, renderVerify, renderForgot, renderReset, renderInvitation,
  renderConfirmEmail, renderConfirmErasure, renderMe,
} from './pages/account.js';
import {
  renderAdminUsers, renderAdminNewUser, renderAdminUser, renderAdminActivity, renderAdminConsent,
  renderAdminMailTemplates, renderAdminDevMail,
} from './pages/admin.js';
import { renderUpload } from './pages/files.js';
import { renderInvitations } from './pages/invitations.js';

/* Routes: path pattern -> page. The fields are explained in router.js. */
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
  { path: '/invitations', title: 'Invitations', render: renderInvitations, auth: 'user' },
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

async function boot() {
  onConsentRequired(() => {
    state.consentRequired = true;
    openConsentPrompt();
  });
  onUserChange(() => {
    renderChrome();
    if (!state.user) closeConsentPrompt();
  });
  startRouter({
    routes,
    beforeRender: closeUserMenu,
    afterRender: () => {
      markCurrentNav();
      if (state.consentRequired && state.user) openConsentPrompt();
    },
  });
  document.addEventListener('click', (event) => {
    const wrap = document.querySelector('.user-menu-wrap');
    if (wrap && !wrap.contains(event.target)) closeUserMenu();
  });

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
