'use strict';
// The main journeys with the keyboard alone (Tab, Shift+Tab, Enter, Space, arrows, Escape; no
// mouse click anywhere): register, sign in, move around by the skip link, the header and the
// work links, open the user menu, edit the profile (theme included), upload a file and download
// it, grant a role as an admin, sign out. Every control on the way is reached by Tab, shows a
// visible focus indicator, and a new page moves focus to its heading.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, createUser } = require('../system/stack.js');
const { launch, openPage, goto } = require('./helpers.js');

let stack;
let browser;

before(async () => {
  stack = startStack({ env: { EJ_SITE_NAME: 'Annals of Keyboard Testing', EJ_DEV_MAIL: 'true' } });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

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
  await page.keyboard.press('ArrowDown');
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
  const who = await createUser(stack, { roles: ['author'], name: 'Kim Keys' });
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
  const admin = await createUser(stack, { roles: ['admin'], name: 'Ada Keys' });
  const person = await createUser(stack, { roles: ['author'], name: 'Role To Grant' });
  const { context, page, problems } = await openPage(browser, { viewport: { width: 1280, height: 900 } });
  try {
    await signIn(page, admin);
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
