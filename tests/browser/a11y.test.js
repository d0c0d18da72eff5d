'use strict';
// Accessibility, in two parts sharing one stack.
//
// axe-core (tests/browser/package.json) on every page of the app, as every role
// sees it (anonymous, author, reviewer and editor, admin), in every theme of tokens.css. The bar is
// no serious or critical violation. Each page runs every axe rule once, in the light theme, then
// the colour-contrast rule alone in the five other themes (the rest of a page does not change
// with its theme). Besides pages: the user menu open, a form showing its errors, a dialog; and
// what axe does not check, the 3:1 contrast of the border of form controls.
//
// axe is added to every page as an init script (the DevTools protocol's, which the page's
// Content-Security-Policy does not govern); motion is reduced so that no colour transition is
// caught half-way.
//
// The keyboard alone (Tab, Shift+Tab, Enter, Space, arrows, Escape; no mouse click anywhere)
// completes the main journeys: register, sign in, move around by the skip link, the header and
// the work links, open the user menu, edit the profile (theme included), upload a file and
// download it, grant a role as an admin, sign out. Every control on the way is reached by Tab
// and shows a visible focus indicator, and a new page moves focus to its heading.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { startStack, createUser } = require('../system/stack.js');
const { launch, openPage, goto } = require('./helpers.js');

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const THEMES = ['light', 'dark', 'journal', 'modern', 'elegant', 'high-contrast'];
const BAD = new Set(['serious', 'critical']);

let stack;
let browser;
const users = {};

before(async () => {
  stack = startStack({ env: { EJ_SITE_NAME: 'Annals of Accessible Testing', EJ_DEV_MAIL: 'true' } });
  const make = (key, roles, name) => createUser(stack, { roles, name }).then((u) => { users[key] = u; });
  await Promise.all([
    make('author', ['author'], 'An Author'),
    make('reviewerEditor', ['reviewer', 'editor'], 'A Reviewer'),
    make('admin', ['admin'], 'An Admin'),
    make('keys', ['author'], 'Kim Keys'),
    make('grantee', ['author'], 'Role To Grant'),
  ]);
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

// A page with axe loaded, signed in as `who` (a createUser answer) or anonymous.
async function axePage(who, allow = []) {
  const opened = await openPage(browser, { allow });
  await opened.context.addInitScript({ content: AXE });
  await opened.page.emulateMedia({ reducedMotion: 'reduce' });
  if (who) {
    const [name, ...rest] = who.cookie.split('=');
    await opened.context.addCookies([{ name, value: rest.join('='), url: stack.url }]);
  }
  return opened;
}

// The serious and critical violations on the page as it is now, one line each.
async function violations(page, where, options) {
  const found = await page.evaluate(async (opts) => {
    const r = await window.axe.run(document, opts);
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  }, options);
  return found.filter((v) => BAD.has(v.impact)).map((v) => `${where}: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).join(' | ')}`);
}

// Every rule in the light theme, then colour contrast in the other themes (in one call). The
// header and footer are the same on every page of a session: `chrome` false leaves them out of
// the contrast runs once a first page has had them checked.
async function checkAllThemes(page, where, { chrome = true } = {}) {
  await page.evaluate(() => { document.documentElement.dataset.theme = 'light'; });
  const out = await violations(page, `${where} [light]`, { resultTypes: ['violations'] });
  const byTheme = await page.evaluate(async ([themes, withChrome]) => {
    const found = [];
    const context = withChrome ? document : { exclude: [['.site-header'], ['.site-footer']] };
    for (const t of themes) {
      document.documentElement.dataset.theme = t;
      const r = await window.axe.run(context, { runOnly: { type: 'rule', values: ['color-contrast'] }, resultTypes: ['violations'] });
      for (const v of r.violations) {
        found.push({ theme: t, id: v.id, impact: v.impact, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`) });
      }
    }
    return found;
  }, [THEMES.slice(1), chrome]);
  return out.concat(byTheme.filter((v) => BAD.has(v.impact))
    .map((v) => `${where} [${v.theme}]: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).join(' | ')}`));
}

// What axe does not check: the border of every text input, select and text area (all a control
// is recognised by) stands out at 3:1 against what surrounds it (WCAG 1.4.11), in every theme.
async function controlBorders(page, where) {
  return page.evaluate(([themes, at]) => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
    const behind = (el) => {
      for (let e = el.parentElement; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const bad = [];
    for (const t of themes) {
      document.documentElement.dataset.theme = t;
      for (const el of document.querySelectorAll('input:not([type="checkbox"]):not([type="radio"]):not([type="file"]):not([type="hidden"]), select, textarea')) {
        if (!el.offsetParent) continue;
        const r = ratio(rgb(getComputedStyle(el).borderTopColor).slice(0, 3), behind(el));
        if (r < 3) bad.push(`${at} [${t}]: the border of #${el.id || el.name} stands out at ${r.toFixed(2)}:1 only`);
      }
    }
    document.documentElement.dataset.theme = 'light';
    return bad;
  }, [THEMES, where]);
}

// Opens `path` the way a person following a link does: the app's router draws it, without a
// reload (the first page of a session loads the app).
async function visit(page, path) {
  if (!/^http/.test(page.url())) {
    await goto(page, stack.url + path);
    return;
  }
  await page.evaluate((p) => {
    const a = document.createElement('a');
    a.href = p;
    document.body.append(a);
    a.click();
    a.remove();
  }, path);
  await page.waitForFunction(() => {
    const main = document.getElementById('main');
    return !main.hasAttribute('aria-busy') && main.children.length > 0 && !document.querySelector('[aria-busy="true"]');
  }, null, { timeout: 15000 });
}

async function checkPages(who, paths, allow = []) {
  const { context, page, problems } = await axePage(who, allow);
  const found = [];
  try {
    for (const [i, p] of paths.entries()) {
      await visit(page, p);
      found.push(...await checkAllThemes(page, p, { chrome: i === 0 }));
    }
    return { found, problems, page, context };
  } catch (e) {
    await context.close();
    throw e;
  }
}

const PUBLIC = ['/', '/login', '/register', '/check-email', '/verify', '/forgot-password', '/reset', '/invitation',
  '/confirm-email', '/erasure/confirm', '/privacy', '/browse', '/issues', '/about', '/no-such-page'];
// Pages with a token in their address that is not (or no longer) valid answer 4xx by design.
const TOKEN_PAGES_ALLOW = ['/api/auth/verify', '/api/auth/email/confirm', '/api/auth/erasure/confirm']
  .flatMap((p) => [400, 404, 410].map((s) => [s, p]));

test('anonymous: every public page, the login redirect and a form showing its errors', { timeout: 120000 }, async () => {
  const { found, problems, page, context } = await checkPages(null, [...PUBLIC, '/me'], TOKEN_PAGES_ALLOW);
  try {
    // The registration form with every error shown.
    await visit(page, '/register');
    await page.click('#register-form button[type="submit"]');
    await page.waitForSelector('#register-form [aria-invalid="true"]');
    found.push(...await checkAllThemes(page, '/register (errors)', { chrome: false }));
    await visit(page, '/register');
    found.push(...await controlBorders(page, '/register'));
    assert.deepEqual(found, []);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

// The reviewer's and the editor's pages are those of one person holding both roles (each page
// shows the work links of every role held).
for (const [label, who, paths] of [
  ['author', 'author', ['/', '/me', '/upload', '/submissions', '/submissions/new', '/reviews']],
  ['reviewer and editor', 'reviewerEditor', ['/reviews', '/editorial', '/admin/users']],
]) {
  test(`${label}: the pages of the role, a page it may not see, the user menu`, { timeout: 120000 }, async () => {
    const { found, problems, page, context } = await checkPages(users[who], paths);
    try {
      await visit(page, '/');
      await page.click('#user-menu-button');
      await page.waitForSelector('#user-menu:not([hidden])');
      found.push(...await checkAllThemes(page, '/ (user menu open)'));
      assert.deepEqual(found, []);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}

test('admin: every admin page, a user\'s page and a confirmation dialog', { timeout: 120000 }, async () => {
  const id = users.author.user.id;
  const { found, problems, page, context } = await checkPages(users.admin, ['/', '/me', '/admin/users', '/admin/users/new',
    `/admin/users/${id}`, '/admin/activity', '/admin/consent', '/admin/mail-templates', '/admin/dev-mail']);
  try {
    await visit(page, '/admin/users');
    found.push(...await controlBorders(page, '/admin/users'));
    // A confirmation dialog over the page (dev mail: forget every caught message).
    await visit(page, '/admin/dev-mail');
    await page.click('#devmail-clear');
    await page.waitForSelector('#devmail-clear-dialog');
    found.push(...await checkAllThemes(page, '/admin/dev-mail (dialog)', { chrome: false }));
    assert.deepEqual(found, []);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

// --- the keyboard alone ---

// What has focus, for messages: "tag#id.class text".
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return '(body)';
    const cls = typeof el.className === 'string' && el.className ? '.' + el.className.split(/\s+/).join('.') : '';
    return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${cls} ${(el.innerText || el.value || '').slice(0, 40)}`;
  });
}

// True when the focused element shows a focus indicator (an outline or a box shadow).
function focusVisible(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return false;
    const s = getComputedStyle(el);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || (s.boxShadow && s.boxShadow !== 'none');
  });
}

// Presses Tab (Shift+Tab with back) until the focused element matches `selector`; fails after
// `max` presses. Checks the focus indicator of the element reached.
async function tabTo(page, selector, { max = 60, back = false } = {}) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
    if (await page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), selector)) {
      assert.ok(await focusVisible(page), `${selector} shows where the focus is`);
      return;
    }
  }
  assert.fail(`${selector} is not reached by the keyboard (focus ends on ${await focused(page)})`);
}

// After a navigation, focus is on the new page's heading (or main).
async function focusOnHeading(page) {
  await page.waitForFunction(() => {
    const el = document.activeElement;
    return el && (/^H[1-3]$/.test(el.tagName) || el.id === 'main') && el.closest('main');
  }, null, { timeout: 15000 });
}

async function typeInto(page, selector, text) {
  await tabTo(page, selector);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(text);
}

async function signIn(page, who) {
  await goto(page, stack.url + '/');
  await tabTo(page, '#account-links a[href="/login"]');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/login');
  await focusOnHeading(page);
  await typeInto(page, '#login-form-email', who.email);
  await typeInto(page, '#login-form-password', who.password);
  await page.keyboard.press('Enter'); // submits the form from its field
  await page.waitForSelector('#user-menu-button', { timeout: 15000 });
}

async function signOut(page) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await tabTo(page, '#user-menu-button');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'menu-profile');
  // Down the menu's items to the last one, which is "Log out".
  const items = await page.evaluate(() => document.querySelectorAll('#user-menu li').length);
  for (let i = 1; i < items; i++) await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'menu-logout');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#account-links a[href="/login"]', { timeout: 15000 });
}

test('register with the keyboard alone', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  const email = `keys.${Date.now()}@example.org`;
  try {
    await goto(page, stack.url + '/');
    await tabTo(page, '#account-links a[href="/register"]');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/register');
    await focusOnHeading(page);
    await typeInto(page, '#register-form-name', 'Kay Board');
    await typeInto(page, '#register-form-email', email);
    await typeInto(page, '#register-form-password', 'correct horse battery staple');
    await tabTo(page, '#register-form-consent');
    await page.keyboard.press('Space');
    assert.equal(await page.isChecked('#register-form-consent'), true);
    await tabTo(page, '#register-form button[type="submit"]');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/check-email', { timeout: 15000 });
    await focusOnHeading(page);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('sign in, move around, edit the profile, upload and download, sign out: keyboard only', { timeout: 90000 }, async () => {
  const who = users.keys;
  const { context, page, problems } = await openPage(browser);
  try {
    await signIn(page, who);

    // The skip link is the first stop and takes focus to the content.
    await goto(page, stack.url + '/');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    assert.ok(await focusVisible(page), 'the skip link shows its focus');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'main');

    // The header's links and the author's work links.
    await tabTo(page, '.nav-main a[href="/about"]', { back: true });
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/about');
    await focusOnHeading(page);
    await tabTo(page, '#work-nav a[href="/submissions"]');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/submissions');
    await focusOnHeading(page);

    // The user menu: Enter opens it on its first item, Escape closes it back on its button,
    // Space opens it too; the profile link opens the profile.
    await tabTo(page, '#user-menu-button', { back: true });
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'menu-profile');
    await page.keyboard.press('Escape');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'user-menu-button');
    assert.equal(await page.isHidden('#user-menu'), true);
    await page.keyboard.press('Space');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'menu-profile');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/me');
    await focusOnHeading(page);

    // The profile: a field and the theme (a select, changed by the arrow keys), saved by Enter.
    await typeInto(page, '#profile-form-affiliation', 'Keyboard Institute');
    await tabTo(page, '#profile-form-theme');
    await page.keyboard.press('ArrowDown');
    const theme = await page.inputValue('#profile-form-theme');
    await tabTo(page, '#profile-form button[type="submit"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#flash.flash-success', { timeout: 15000 });
    const me = await page.evaluate(async () => (await (await fetch('/api/me')).json()).user);
    assert.equal(me.affiliation, 'Keyboard Institute');
    assert.equal(me.theme, theme);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme || undefined);

    // Upload: the file picker opens with Space, the upload starts once a file is chosen, and
    // the link to the stored file is reached by Tab and downloads with Enter.
    await goto(page, stack.url + '/upload');
    await tabTo(page, 'input[type="file"]');
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Space')]);
    const text = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
      '2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    await chooser.setFiles({ name: 'keys.pdf', mimeType: 'application/pdf', buffer: text });
    await page.waitForSelector('.upload-done a.upload-link, .upload-error:not([hidden])', { timeout: 30000 });
    assert.equal(await page.locator('.upload-error:not([hidden])').count(), 0,
      `upload refused: ${await page.locator('.upload-error').innerText().catch(() => '')}`);
    await tabTo(page, '.upload-done a.upload-link');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    assert.equal(download.suggestedFilename(), 'keys.pdf');

    await signOut(page);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('an admin grants a role with the keyboard alone', { timeout: 90000 }, async () => {
  const person = users.grantee;
  const { context, page, problems } = await openPage(browser, { viewport: { width: 1280, height: 900 } });
  try {
    await signIn(page, users.admin);
    await tabTo(page, '#work-nav a[href="/admin/users"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#users-table');
    await typeInto(page, '#users-q', person.email);
    await page.keyboard.press('Enter');
    await page.waitForFunction((id) => {
      const rows = document.querySelectorAll('#users-table tbody tr');
      return rows.length === 1 && rows[0].dataset.userId === id && !document.querySelector('.pager-wrap[aria-busy]');
    }, person.user.id, { timeout: 15000 });
    await tabTo(page, `#users-table tr[data-user-id="${person.user.id}"] a`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#role-editor');
    await focusOnHeading(page);
    await tabTo(page, '#role-editor');
    await page.keyboard.press('Space');
    await page.waitForSelector('#user-action-status .message-success', { timeout: 15000 });
    assert.match(await page.locator('#user-action-status').innerText(), /editor/);
    assert.equal(await page.isChecked('#role-editor'), true);
    await signOut(page);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
