'use strict';
// Accessibility: axe-core (tests/browser/package.json) on every page of the app, as every role
// sees it (anonymous, author, reviewer and editor, admin), in every theme of tokens.css. The bar is
// no serious or critical violation. Each page runs every axe rule once, in the light theme, then
// the colour-contrast rule alone in the five other themes (the rest of a page does not change
// with its theme). Besides pages: the user menu open, a form showing its errors, a dialog; and
// what axe does not check, the 3:1 contrast of the border of form controls.
//
// axe is added to every page as an init script (the DevTools protocol's, which the page's
// Content-Security-Policy does not govern); motion is reduced so that no colour transition is
// caught half-way.

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
  users.author = await createUser(stack, { roles: ['author'], name: 'An Author' });
  users.reviewerEditor = await createUser(stack, { roles: ['reviewer', 'editor'], name: 'A Reviewer' });
  users.admin = await createUser(stack, { roles: ['admin'], name: 'An Admin' });
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

// Every rule in the light theme, then colour contrast in the other themes (in one call).
async function checkAllThemes(page, where) {
  await page.evaluate(() => { document.documentElement.dataset.theme = 'light'; });
  const out = await violations(page, `${where} [light]`, { resultTypes: ['violations'] });
  const byTheme = await page.evaluate(async (themes) => {
    const found = [];
    for (const t of themes) {
      document.documentElement.dataset.theme = t;
      const r = await window.axe.run(document, { runOnly: { type: 'rule', values: ['color-contrast'] }, resultTypes: ['violations'] });
      for (const v of r.violations) {
        found.push({ theme: t, id: v.id, impact: v.impact, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`) });
      }
    }
    return found;
  }, THEMES.slice(1));
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

async function checkPages(who, paths, allow = []) {
  const { context, page, problems } = await axePage(who, allow);
  const found = [];
  try {
    for (const p of paths) {
      await goto(page, stack.url + p);
      found.push(...await checkAllThemes(page, p));
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
    await goto(page, stack.url + '/register');
    await page.click('#register-form button[type="submit"]');
    await page.waitForSelector('#register-form [aria-invalid="true"]');
    found.push(...await checkAllThemes(page, '/register (errors)'));
    await goto(page, stack.url + '/register');
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
      await goto(page, stack.url + '/');
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
    await goto(page, stack.url + '/admin/users');
    found.push(...await controlBorders(page, '/admin/users'));
    // A confirmation dialog over the page (dev mail: forget every caught message).
    await goto(page, stack.url + '/admin/dev-mail');
    await page.click('#devmail-clear');
    await page.waitForSelector('#devmail-clear-dialog');
    found.push(...await checkAllThemes(page, '/admin/dev-mail (dialog)'));
    assert.deepEqual(found, []);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
