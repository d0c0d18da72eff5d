'use strict';
// Browser tests: Debian's chromium driven by playwright-core against a private stack. The start
// page must load, show the journal's name, log no console errors and trip no CSP rule; a visitor
// can create an account and is asked to verify the address (identity.test.js follows on). The
// app's ES modules are all preloaded from index.html, so loading them is one parallel round, not
// a waterfall of imports found one after another.
// The API reference page, /api/docs, renders the gateway's own description under the same CSP.

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

// The module graph of the app as its files say: every module app.js reaches through static
// imports ("from './x.js'"), as paths on the site ("/pages/admin.js").
function moduleGraph() {
  const web = path.join(__dirname, '..', '..', 'gateway', 'web');
  const seen = new Set();
  const visit = (rel) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const src = fs.readFileSync(path.join(web, rel), 'utf8');
    for (const m of src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)) {
      visit(path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[1])));
    }
  };
  visit('app.js');
  return { web, modules: [...seen].map((rel) => '/' + rel) };
}

test('every module is preloaded and requested in one parallel round; time to ready is reported', { timeout: 60000 }, async () => {
  const { web, modules } = moduleGraph();
  const html = fs.readFileSync(path.join(web, 'index.html'), 'utf8');
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]);
  assert.deepEqual([...preloaded].sort(), modules.filter((m) => m !== '/app.js').sort(),
    'index.html preloads exactly the modules app.js imports (directly or not)');
  // Every style sheet in the web root is linked (an area's sheet cannot be forgotten).
  const sheets = [...html.matchAll(/<link rel="stylesheet" href="([^"]+)">/g)].map((m) => m[1]);
  const cssFiles = ['', 'pages'].flatMap((dir) => fs.readdirSync(path.join(web, dir))
    .filter((f) => f.endsWith('.css')).map((f) => '/' + (dir ? dir + '/' : '') + f));
  assert.deepEqual([...sheets].sort(), cssFiles.sort(), 'index.html links every style sheet');
  assert.equal(sheets[0], '/tokens.css', 'the theme tokens come first');

  const { context, page, problems } = await openPage();
  try {
    // The moment the app marks itself ready (data-ready on <html>), on the navigation's clock.
    await page.addInitScript(() => {
      new MutationObserver((_, obs) => {
        if (document.documentElement && document.documentElement.dataset.ready === 'true') {
          window.__ejReadyAt = performance.now();
          obs.disconnect();
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
    });
    await page.goto(stack.url + '/', { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
    const t = await page.evaluate(() => ({
      ready: window.__ejReadyAt,
      dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
      js: performance.getEntriesByType('resource').filter((e) => /\.js$/.test(new URL(e.name).pathname))
        .map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, end: e.responseEnd })),
    }));
    // Each module was fetched once (the import used the preload) ...
    assert.deepEqual(t.js.map((e) => e.path).sort(), [...modules].sort(), 'each module fetched once');
    // ... and all were asked for before any of them had arrived: none was found late, by
    // reading its parent (that request could only start after the parent's answer ended).
    const firstArrival = Math.min(...t.js.map((e) => e.end));
    const late = t.js.filter((e) => e.start > firstArrival).map((e) => e.path);
    assert.deepEqual(late, [], 'modules requested only after another module had arrived');
    const lastStart = Math.max(...t.js.map((e) => e.start));
    process.stdout.write(`# app ready ${t.ready.toFixed(0)} ms after navigation start (DOMContentLoaded ` +
      `${t.dcl.toFixed(0)} ms); ${t.js.length} modules, all requested within ${lastStart.toFixed(0)} ms, ` +
      `first arrived at ${firstArrival.toFixed(0)} ms\n`);
    assert.deepEqual(problems, []);
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
