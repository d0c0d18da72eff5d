'use strict';
// The API reference page: /api/docs renders the gateway's own /api/openapi.json with the
// vendored Swagger UI, under the gateway's Content-Security-Policy, with no console error and
// no CSP violation; the operations of /api/me are listed and one opens to show its answers.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack } = require('../system/stack.js');
const { launch, openPage, shot } = require('./helpers.js');

let stack;
let browser;

before(async () => {
  stack = startStack({ env: { EJ_SITE_NAME: 'Annals of API Reading' } });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

test('/api/docs renders the API reference', async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const res = await page.goto(stack.url + '/api/docs', { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    const csp = res.headers()['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 20000 });
    assert.match(await page.textContent('.swagger-ui .info .title'), /Annals of API Reading API/);
    const me = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/api/me"])');
    await me.first().waitFor({ timeout: 10000 });
    await me.first().locator('.opblock-summary').click();
    await page.waitForSelector('.opblock-get.is-open .responses-table', { timeout: 10000 });
    const text = await page.textContent('.opblock-get.is-open');
    assert.match(text, /a signed-in session/);
    assert.match(text, /401/);
    await shot(page, 'api-docs');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
