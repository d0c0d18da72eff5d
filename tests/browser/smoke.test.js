'use strict';
// Browser tests: Debian's chromium driven by playwright-core against a private stack. The start
// page must load, show the journal's name, log no console errors and trip no CSP rule; a visitor
// can create an account and is asked to verify the address (identity.test.js follows on). The
// API reference page, /api/docs, renders the gateway's own description under the same CSP.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startStack } = require('../system/stack.js');

const SITE_NAME = 'Annals of Browser Testing';
const CHROMIUM = process.env.EJ_CHROMIUM || '/usr/bin/chromium';
const SHOT_DIR = process.env.EJ_SHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'ej-browser-'));

let stack;
let browser;

before(async () => {
  stack = startStack({ env: { EJ_SITE_NAME: SITE_NAME } });
  browser = await chromium.launch({
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
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

// A fresh page that records console errors, page errors and CSP violations.
async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url || '';
    // An anonymous visitor's GET /api/me is answered 401 by design; Chromium logs every
    // non-2xx fetch as a console error.
    if (/status of 401/.test(msg.text()) && where.endsWith('/api/me')) return;
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

test('the start page loads and shows the journal name', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage();
  try {
    const res = await page.goto(stack.url + '/', { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
    const h1 = await page.locator('h1').first().innerText();
    assert.ok(h1.includes(SITE_NAME), `h1 "${h1}" names the journal`);
    assert.ok((await page.title()).includes(SITE_NAME), `title "${await page.title()}"`);
    await page.screenshot({ path: path.join(SHOT_DIR, 'start-page.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a visitor registers and is asked to verify the e-mail address', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage();
  const email = `browser.${Date.now()}@example.org`;
  try {
    await page.goto(stack.url + '/register', { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
    await page.fill('input[name="name"]', 'Browser Tester');
    await page.fill('input[name="email"]', email);
    await page.fill('input[name="password"]', 'correct horse battery staple');
    await page.check('input[name="consent"]');
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.pathname === '/check-email', { timeout: 15000 });
    const said = await page.locator('main [role="status"]').first().innerText();
    assert.ok(said.includes(email), `"${said}" names the address`);
    await page.screenshot({ path: path.join(SHOT_DIR, 'check-email.png'), fullPage: true });

    // Not signed in until the address is verified and the person logs in.
    await page.waitForSelector('#account-links a[href="/login"]', { timeout: 15000 });
    const me = await page.evaluate(async () => (await fetch('/api/me')).status);
    assert.equal(me, 401, 'signed out');
    // The fetch above logs the expected 401 from page context; drop that one line.
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('/api/docs renders the API reference under the same CSP', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage();
  try {
    const res = await page.goto(stack.url + '/api/docs', { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    const csp = res.headers()['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 20000 });
    assert.match(await page.textContent('.swagger-ui .info .title'), new RegExp(`${SITE_NAME} API`));
    // The operation for GET /api/me is listed; opened, it shows who may call it and its answers.
    const me = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/api/me"])').first();
    await me.waitFor({ timeout: 10000 });
    await me.locator('.opblock-summary').click();
    await page.waitForSelector('.opblock-get.is-open .responses-table', { timeout: 10000 });
    const text = await page.textContent('.opblock-get.is-open');
    assert.match(text, /a signed-in session/);
    assert.match(text, /401/);
    await page.screenshot({ path: path.join(SHOT_DIR, 'api-docs.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

process.on('exit', () => process.stdout.write(`# screenshots in ${SHOT_DIR}\n`));
