'use strict';
// Browser journeys of identity, against a private stack with the dev mail catcher: a visitor
// registers, verifies by the mailed link, logs in, edits the profile and logs out; a password is
// reset by mail; an admin grants a role and the person's menu changes; a required consent
// version blocks the app until accepted. No journey may log a console error or trip the CSP.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, createUser, waitForMail, mailLink } = require('../system/stack.js');
const { launch, openPage, goto, logInUi, logOutUi, onStack, shot } = require('./helpers.js');

const SITE_NAME = 'Annals of Identity Testing';

let stack;
let browser;
let admin; // { cookie, email, password } of an admin made with the users CLI

before(async () => {
  stack = startStack({ env: { EJ_SITE_NAME: SITE_NAME, EJ_DEV_MAIL: 'true' } });
  admin = await createUser(stack, { roles: ['admin'], name: 'Site Admin' });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

function unique(prefix) {
  return `${prefix}.${Date.now()}${Math.floor(Math.random() * 1e6)}@example.org`;
}

// The HTTP status of a same-origin API call made from the page (with its cookie).
function apiStatus(page, method, path, body) {
  return page.evaluate(async ([m, p, b]) => {
    const init = { method: m, headers: { 'Content-Type': 'application/json' } };
    if (m !== 'GET') init.body = JSON.stringify(b || {});
    const res = await fetch(p, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }, [method, path, body]);
}

test('register, verify by the mailed link, log in, edit the profile, log out', { timeout: 120000 }, async () => {
  // A replayed verification link is refused (4xx) by design; so is the anonymous /api/me.
  // So is the bad ORCID iD sent to PATCH /api/me.
  const replayed = [400, 404, 409, 410].map((status) => [status, '/api/auth/verify']);
  const { context, page, problems } = await openPage(browser, { allow: [...replayed, [400, '/api/me']] });
  const email = unique('reader');
  const password = 'correct horse battery staple';
  try {
    await goto(page, stack.url + '/register');
    // Every field has a label.
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('#register-form input, #register-form textarea')]
      .filter((el) => !document.querySelector(`label[for="${el.id}"]`)).map((el) => el.name));
    assert.deepEqual(unlabelled, []);

    // Without consent the form refuses, naming the field.
    await page.fill('#register-form-name', 'Rosalind Franklin');
    await page.fill('#register-form-email', email);
    await page.fill('#register-form-password', password);
    await page.fill('#register-form-affiliation', "King's College London");
    await page.fill('#register-form-orcid', '0000-0002-1825-0097');
    await page.fill('#register-form-bio', 'Crystallographer.');
    await page.click('#register-form button[type="submit"]');
    await page.waitForSelector('#register-form-consent[aria-invalid="true"]');
    assert.match(await page.locator('#register-form-consent-error').innerText(), /privacy notice/i);

    await page.check('#register-form-consent');
    await page.click('#register-form button[type="submit"]');
    await page.waitForURL((u) => u.pathname === '/check-email', { timeout: 15000 });
    assert.match(await page.locator('main [role="status"]').first().innerText(), new RegExp(email.replace(/\./g, '\\.')));
    await shot(page, 'identity-check-email');

    // The verification mail, caught by the dev SMTP catcher; its link verifies once.
    const mail = await waitForMail(stack, admin.cookie, email, { match: /verif/i });
    const { link } = mailLink(mail);
    assert.match(new URL(link).pathname, /^\/verify$/);
    await goto(page, onStack(stack, link));
    await page.waitForSelector('#verify-result .message-success', { timeout: 15000 });
    assert.match(await page.locator('#verify-result').innerText(), /verified/i);
    await goto(page, onStack(stack, link));
    await page.waitForSelector('#verify-result [role="alert"]', { timeout: 15000 });
    assert.match(await page.locator('#verify-result [role="alert"]').innerText(), /used|invalid|expired/i);

    // Log in with "remember me" and a `next` that points off-site: the app stays on the site.
    await logInUi(page, stack.url, email, password, { next: '//evil.example.org/x', remember: true });
    assert.equal(new URL(page.url()).origin, stack.url);
    assert.equal(new URL(page.url()).pathname, '/me');
    const session = (await context.cookies()).find((c) => /session/.test(c.name));
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(await page.evaluate(() => document.cookie.includes('session')), false);
    assert.ok(session.expires > Date.now() / 1000 + 86400, 'remember me keeps the session for days');
    assert.equal(await page.locator('[data-field="affiliation"]').innerText(), "King's College London");
    assert.equal(await page.locator('[data-field="orcid"]').innerText(), '0000-0002-1825-0097');
    // An author sees the author's links and no admin links.
    assert.equal(await page.locator('#work-nav a[href="/submissions"]').count(), 1);
    assert.equal(await page.locator('#work-nav a[href="/admin/users"]').count(), 0);

    // A local `next` is honoured.
    await logOutUi(page);
    await logInUi(page, stack.url, email, password, { next: '/privacy' });
    assert.equal(new URL(page.url()).pathname, '/privacy');
    for (const bad of ['/\\evil.example.org', 'https://evil.example.org/']) {
      await logOutUi(page);
      await logInUi(page, stack.url, email, password, { next: bad });
      assert.equal(new URL(page.url()).origin, stack.url, `next=${bad}`);
      assert.equal(new URL(page.url()).pathname, '/me', `next=${bad}`);
    }

    // Edit the profile: a bad ORCID is refused by the service, naming the field.
    await goto(page, stack.url + '/me');
    await page.fill('#profile-form-orcid', '0000-0002-1825-0098');
    await page.click('#profile-form button[type="submit"]');
    await page.waitForSelector('#profile-form-orcid[aria-invalid="true"]', { timeout: 15000 });
    assert.match(await page.locator('#profile-form-orcid-error').innerText(), /\S/);

    await page.fill('#profile-form-orcid', '0000-0002-1825-0097');
    await page.fill('#profile-form-affiliation', 'Birkbeck College');
    await page.fill('#profile-form-bio', 'X-ray crystallographer.');
    await page.selectOption('#profile-form-theme', 'dark');
    await page.click('#profile-form button[type="submit"]');
    await page.waitForSelector('#flash.flash-success >> text=profile has been saved', { timeout: 15000 });
    assert.equal(await page.locator('[data-field="affiliation"]').innerText(), 'Birkbeck College');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    // The theme holds across a reload (it comes from the account, not the page).
    await goto(page, stack.url + '/');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await goto(page, stack.url + '/me');
    await shot(page, 'identity-profile-dark');

    // Log out: the session is gone server-side.
    await logOutUi(page);
    assert.equal((await apiStatus(page, 'GET', '/api/me')).status, 401);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a forgotten password is reset by the mailed link, once', { timeout: 120000 }, async () => {
  const person = await createUser(stack, { roles: ['author'], name: 'Grace Hopper' });
  const { context, page, problems } = await openPage(browser, {
    allow: [
      ...[400, 404, 409, 410].map((status) => [status, '/api/auth/password/reset']),
      ...[400, 401, 403].map((status) => [status, '/api/auth/login']),
    ],
  });
  const fresh = 'a brand new passphrase';
  try {
    await goto(page, stack.url + '/login');
    await page.click('a[href="/forgot-password"]');
    await page.waitForSelector('#forgot-form-email');
    await page.fill('#forgot-form-email', person.email);
    await page.click('#forgot-form button[type="submit"]');
    await page.waitForSelector('#forgot-form-status.is-visible', { timeout: 15000 });

    const mail = await waitForMail(stack, admin.cookie, person.email, { match: /reset|password/i });
    const { link } = mailLink(mail);
    assert.match(new URL(link).pathname, /^\/reset(-password)?$/);
    await goto(page, onStack(stack, link));
    await page.fill('#reset-form-password', fresh);
    await page.fill('#reset-form-confirm', fresh + ' typo');
    await page.click('#reset-form button[type="submit"]');
    await page.waitForSelector('#reset-form-confirm[aria-invalid="true"]');
    await page.fill('#reset-form-confirm', fresh);
    await page.click('#reset-form button[type="submit"]');
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 15000 });
    assert.match(await page.locator('#flash').innerText(), /password has been changed/i);

    // The old password no longer works; the new one does.
    await page.fill('#login-form-email', person.email);
    await page.fill('#login-form-password', person.password);
    await page.click('#login-form button[type="submit"]');
    await page.waitForSelector('#login-form-alert.is-visible', { timeout: 15000 });
    await logInUi(page, stack.url, person.email, fresh);
    assert.equal(new URL(page.url()).pathname, '/me');
    await logOutUi(page);

    // The link is single-use: a replay says so clearly.
    await goto(page, onStack(stack, link));
    await page.fill('#reset-form-password', 'yet another passphrase');
    await page.fill('#reset-form-confirm', 'yet another passphrase');
    await page.click('#reset-form button[type="submit"]');
    await page.waitForSelector('#reset-form-alert.is-visible', { timeout: 15000 });
    assert.match(await page.locator('#reset-form-alert').innerText(), /used|invalid|expired/i);
    await shot(page, 'identity-reset-replayed');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("an admin grants the editor role and the person's menu changes", { timeout: 120000 }, async () => {
  const person = await createUser(stack, { roles: ['author'], name: 'Editor To Be' });
  const them = await openPage(browser);
  const adm = await openPage(browser, { viewport: { width: 1280, height: 900 } });
  try {
    await logInUi(them.page, stack.url, person.email, person.password);
    assert.equal(await them.page.locator('#work-nav a[href="/editorial"]').count(), 0);
    await goto(them.page, stack.url + '/editorial');
    assert.match(await them.page.locator('main h2').first().innerText(), /access denied/i);

    // The admin finds the person by e-mail in the users list and opens their page.
    await logInUi(adm.page, stack.url, admin.email, admin.password);
    await adm.page.click('#work-nav a[href="/admin/users"]');
    await adm.page.waitForSelector('#users-table');
    await adm.page.fill('#users-q', person.email);
    await adm.page.press('#users-q', 'Enter');
    await adm.page.waitForURL((u) => u.searchParams.get('q') === person.email);
    await adm.page.waitForFunction((id) => {
      const rows = document.querySelectorAll('#users-table tbody tr');
      return rows.length === 1 && rows[0].dataset.userId === id && !document.querySelector('.pager-wrap[aria-busy]');
    }, person.user.id, { timeout: 15000 });
    await shot(adm.page, 'identity-admin-users');
    await adm.page.click(`#users-table tr[data-user-id="${person.user.id}"] a`);
    await adm.page.waitForSelector('#role-editor');
    assert.equal(await adm.page.isChecked('#role-author'), true);
    assert.equal(await adm.page.isChecked('#role-editor'), false);
    await adm.page.check('#role-editor');
    await adm.page.waitForSelector('#user-action-status .message-success', { timeout: 15000 });
    assert.match(await adm.page.locator('#user-action-status').innerText(), /editor/);
    await shot(adm.page, 'identity-admin-user');

    // The person's next navigation shows the editor's link, and the page opens.
    await goto(them.page, stack.url + '/me');
    await them.page.waitForSelector('#work-nav a[href="/editorial"]', { timeout: 15000 });
    await them.page.click('#work-nav a[href="/editorial"]');
    await them.page.waitForURL((u) => u.pathname === '/editorial');
    assert.match(await them.page.locator('main h2').first().innerText(), /editorial/i);
    assert.equal(await them.page.locator('#work-nav a[href="/admin/users"]').count(), 0);

    // Taking it away again shows on the next navigation too.
    await adm.page.uncheck('#role-editor');
    await adm.page.waitForSelector('#user-action-status .message-success', { timeout: 15000 });
    await goto(them.page, stack.url + '/me');
    assert.equal(await them.page.locator('#work-nav a[href="/editorial"]').count(), 0);

    assert.deepEqual(them.problems, []);
    assert.deepEqual(adm.problems, []);
  } finally {
    await them.context.close();
    await adm.context.close();
  }
});

test('a required consent version blocks the app until accepted', { timeout: 120000 }, async () => {
  const person = await createUser(stack, { roles: ['author'], name: 'Consent Tester' });
  // The person's direct API call below is refused with 403 consent_required by design.
  const them = await openPage(browser, { allow: [[403, '/api/me']] });
  const adm = await openPage(browser);
  const marker = `Consent text ${Date.now()}`;
  try {
    await logInUi(them.page, stack.url, person.email, person.password);

    // The admin publishes a required version through the consent page, and is asked to accept
    // it too.
    await logInUi(adm.page, stack.url, admin.email, admin.password);
    await goto(adm.page, stack.url + '/admin/consent');
    await adm.page.fill('#consent-form-markdown', `# ${marker}\n\nWe keep **your name** and e-mail address.\n\n<script>alert(1)</script>`);
    await adm.page.check('#consent-form-required');
    await adm.page.click('#consent-form button[type="submit"]');
    await adm.page.click('#publish-consent-dialog button.btn-primary');
    await adm.page.waitForSelector('#consent-dialog, #flash.flash-success', { timeout: 15000 });
    if (await adm.page.locator('#consent-dialog').count()) {
      await adm.page.click('#consent-accept');
      await adm.page.waitForSelector('#consent-dialog', { state: 'detached', timeout: 15000 });
    }
    await adm.page.waitForSelector('#consent-stats', { timeout: 15000 });

    // The person's next navigation: a blocking dialog with the text as HTML, nothing else.
    await goto(them.page, stack.url + '/me');
    const dlg = them.page.locator('#consent-dialog');
    await dlg.waitFor({ timeout: 15000 });
    assert.equal(await dlg.getAttribute('role'), 'dialog');
    assert.equal(await dlg.getAttribute('aria-modal'), 'true');
    await them.page.waitForSelector('#consent-text h3, #consent-text strong', { timeout: 15000 });
    assert.match(await them.page.locator('#consent-text').innerText(), new RegExp(marker));
    assert.equal(await them.page.locator('#consent-text strong').first().innerText(), 'your name');
    assert.equal(await them.page.locator('#consent-text script').count(), 0);
    await shot(them.page, 'identity-consent-prompt');

    // Escape does not close it; Tab stays inside it; the page behind is inert.
    await them.page.keyboard.press('Escape');
    assert.equal(await dlg.isVisible(), true);
    for (let i = 0; i < 6; i++) {
      await them.page.keyboard.press('Tab');
      assert.equal(await them.page.evaluate(() => !!document.activeElement.closest('#consent-dialog')), true, 'focus in the dialog');
    }
    assert.equal(await them.page.evaluate(() => document.querySelector('main').closest('[inert]') !== null), true);

    // The server refuses other work meanwhile, with a clear code (a gateway may have held the
    // session a moment before the new version was published: allow it that moment).
    let refused;
    for (let i = 0; i < 50; i++) {
      refused = await apiStatus(them.page, 'PATCH', '/api/me', { name: 'Consent Tester', theme: 'light' });
      if (refused.status === 403) break;
      await them.page.waitForTimeout(200);
    }
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'consent_required');

    // Accept: the dialog goes, the page and the API work again. The profile form was already
    // drawn behind the prompt; the prompt goes only once the page has been drawn again, so what
    // is typed next lands in the form that stays. GET /api/me is slowed as on a busy machine:
    // were the prompt to go first, the redraw would come later and replace the form typed into.
    const slowMe = async (route) => {
      if (route.request().method() === 'GET') await new Promise((resolve) => setTimeout(resolve, 300));
      await route.continue();
    };
    await them.page.route('**/api/me', slowMe);
    await them.page.click('#consent-accept');
    await dlg.waitFor({ state: 'detached', timeout: 15000 });
    assert.match(await them.page.locator('#flash').innerText(), /consent has been recorded/i, 'the page was redrawn before the prompt went');
    await them.page.unroute('**/api/me', slowMe);
    await them.page.waitForSelector('#profile-form', { timeout: 15000 });
    await them.page.fill('#profile-form-affiliation', 'Consent Institute');
    await them.page.click('#profile-form button[type="submit"]');
    await them.page.waitForSelector('#flash.flash-success >> text=profile has been saved', { timeout: 15000 });
    assert.equal(await them.page.locator('[data-field="affiliation"]').innerText(), 'Consent Institute');

    // The prompt does not come back after a reload.
    await goto(them.page, stack.url + '/me');
    await them.page.waitForSelector('#profile-form');
    assert.equal(await them.page.locator('#consent-dialog').count(), 0);

    assert.deepEqual(them.problems, []);
    assert.deepEqual(adm.problems, []);
  } finally {
    await them.context.close();
    await adm.context.close();
  }
});

test('an admin creates an account; the invitation link sets the password; activity shows it', { timeout: 120000 }, async () => {
  const adm = await openPage(browser);
  const them = await openPage(browser, { viewport: { width: 375, height: 740 } });
  const email = unique('invited');
  try {
    await logInUi(adm.page, stack.url, admin.email, admin.password);
    await goto(adm.page, stack.url + '/admin/users');
    await adm.page.click('#new-user');
    await adm.page.waitForSelector('#new-user-form');
    await adm.page.fill('#new-user-form-name', 'Invited Reviewer');
    await adm.page.fill('#new-user-form-email', email);
    await adm.page.check('#new-user-role-reviewer');
    await adm.page.click('#new-user-form button[type="submit"]');
    await adm.page.waitForSelector('#user-title', { timeout: 15000 });
    assert.match(await adm.page.locator('#flash').innerText(), /invitation was sent/i);
    assert.equal(await adm.page.isChecked('#role-reviewer'), true);

    // The dev mail page lists the invitation with its link as a real anchor.
    const mail = await waitForMail(stack, admin.cookie, email, { match: /invit/i });
    const { link } = mailLink(mail);
    await adm.page.click('#work-nav a[href="/admin/dev-mail"]');
    await adm.page.waitForSelector('#devmail-list');
    const anchor = adm.page.locator(`#devmail-list li:has-text("${email}") a.mail-link`).first();
    assert.equal(await anchor.getAttribute('href'), link);
    await shot(adm.page, 'identity-dev-mail');

    // The invited person sets a password on a phone-sized screen, then logs in as a reviewer.
    await goto(them.page, onStack(stack, link));
    await them.page.fill('#invitation-form-password', 'an invited passphrase');
    await them.page.fill('#invitation-form-confirm', 'an invited passphrase');
    await shot(them.page, 'identity-invitation-375');
    await them.page.click('#invitation-form button[type="submit"]');
    await them.page.waitForURL((u) => u.pathname === '/login', { timeout: 15000 });
    await logInUi(them.page, stack.url, email, 'an invited passphrase');
    await them.page.waitForSelector('#work-nav a[href="/reviews"]');
    // Nothing on the page is wider than the screen.
    assert.equal(await them.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);

    // The activity log, filtered by kind, shows the invitation being accepted.
    await goto(adm.page, stack.url + '/admin/activity');
    await adm.page.selectOption('#activity-kind', 'invitation_accepted');
    await adm.page.waitForURL((u) => u.searchParams.get('kind') === 'invitation_accepted');
    await adm.page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#activity-table tbody tr')];
      return rows.length > 0 && rows.every((r) => r.dataset.kind === 'invitation_accepted') &&
        !document.querySelector('.pager-wrap[aria-busy]');
    }, null, { timeout: 15000 });
    assert.match(await adm.page.locator('#activity-table').innerText(), /Invited Reviewer/);
    await shot(adm.page, 'identity-activity');

    assert.deepEqual(adm.problems, []);
    assert.deepEqual(them.problems, []);
  } finally {
    await adm.context.close();
    await them.context.close();
  }
});
