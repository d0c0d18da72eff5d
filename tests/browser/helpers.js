'use strict';
// Shared pieces of the browser tests: Debian's chromium through playwright-core, pages that
// record console errors, page errors and CSP violations, and small steps (wait for the app,
// log in through the form) that several journeys take.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.EJ_CHROMIUM || '/usr/bin/chromium';
const SHOT_DIR = process.env.EJ_SHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'ej-browser-'));

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30000,
  });
}

// A fresh context and page that record console errors, page errors and CSP violations into
// `problems`. Chromium logs every non-2xx fetch as a console error; `allow` lists the answers a
// journey expects, as [status, path-suffix] pairs (an anonymous GET /api/me is always allowed).
async function openPage(browser, { allow = [], viewport } = {}) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  const problems = [];
  const allowed = [[401, '/api/me'], ...allow];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = (msg.location()?.url || '').replace(/\?.*$/, '');
    const m = /status of (\d+)/.exec(msg.text());
    if (m && allowed.some(([status, suffix]) => Number(m[1]) === status && where.endsWith(suffix))) return;
    problems.push(`console: ${msg.text()} (${where})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.exposeFunction('__ejCspViolation', (v) => problems.push(`CSP violation: ${v}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__ejCspViolation(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  return { context, page, problems };
}

// Loads `url` and waits until the app has rendered its first page.
async function goto(page, url) {
  const res = await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
  return res;
}

// Signs in through the login form; waits until the app has left the login page.
async function logInUi(page, base, email, password, { next = '', remember = false } = {}) {
  await goto(page, base + '/login' + (next ? '?next=' + encodeURIComponent(next) : ''));
  await page.fill('#login-form-email', email);
  await page.fill('#login-form-password', password);
  if (remember) await page.check('#login-form-rememberMe');
  await page.click('#login-form button[type="submit"]');
  await page.waitForURL((u) => u.pathname !== '/login', { timeout: 15000 });
  await page.waitForSelector('#user-menu-button', { timeout: 15000 });
}

// Logs out through the user menu; waits for the signed-out header.
async function logOutUi(page) {
  await page.click('#user-menu-button');
  await page.click('#menu-logout');
  await page.waitForSelector('#account-links a[href="/login"]', { timeout: 15000 });
}

// The path and query of a mailed link, on the stack under test (the mail's host is the
// configured public address, which a private test stack does not serve).
function onStack(stack, link) {
  const u = new URL(link);
  return stack.url + u.pathname + u.search;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOT_DIR, name + '.png'), fullPage: true });
}

process.on('exit', () => process.stdout.write(`# screenshots in ${SHOT_DIR}\n`));

module.exports = { launch, openPage, goto, logInUi, logOutUi, onStack, shot, SHOT_DIR };
