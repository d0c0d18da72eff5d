'use strict';
// Browser journey of an invitation to a role: an editor invites an existing author to review;
// the author's account is unchanged until they open the mailed link, sign in, and accept on the
// Invitations page (keyboard only); a second invitation is declined. No console error, no CSP
// violation.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, createUser, waitForMail } = require('../system/stack.js');
const { launch, openPage, goto, logInUi, onStack, shot } = require('./helpers.js');

let stack;
let browser;
let admin;
let editor;

before(async () => {
  stack = startStack({ env: { EJ_DEV_MAIL: 'true' } });
  admin = await createUser(stack, { roles: ['admin'], name: 'Site Admin' });
  editor = await createUser(stack, { roles: ['editor'], name: 'Edna Editor' });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

const invite = (email, role) =>
  stack.fetch('/api/admin/invitations', {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: editor.cookie },
    body: JSON.stringify({ email, name: 'ignored', role }),
  });

test('an invited author accepts one invitation and declines another, by keyboard', { timeout: 120000 }, async () => {
  const author = await createUser(stack, { roles: ['author'], name: 'Ann Author' });
  const res = await invite(author.email, 'reviewer');
  assert.equal(res.status, 200, await res.text());
  const mail = await waitForMail(stack, admin.cookie, author.email, { match: /invit/i });
  const link = (mail.text.replace(/=\r?\n/g, '').match(/https?:\/\/\S+\/invitations/) || [])[0];
  assert.ok(link, `a link to the invitations page in: ${mail.text}`);

  const { context, page, problems } = await openPage(browser);
  try {
    await logInUi(page, stack.url, author.email, author.password, { next: '/invitations' });
    await goto(page, onStack(stack, link));
    await page.waitForSelector('#invitation-list');
    const item = page.locator('#invitation-list li[data-role="reviewer"]');
    assert.match(await item.innerText(), /Edna Editor invites you to be a reviewer/);
    // Not a reviewer yet: the work links have no Reviews.
    assert.equal(await page.locator('#work-nav a[href="/reviews"]').count(), 0);
    await shot(page, 'invitations-pending');

    // Keyboard only: focus the Accept button and press Enter.
    await item.locator('button[data-action="accept"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#flash.is-visible', { timeout: 15000 });
    assert.match(await page.locator('#flash').innerText(), /you are now a reviewer/i);
    await page.waitForSelector('#work-nav a[href="/reviews"]', { timeout: 15000 });
    await page.waitForSelector('#invitation-list', { state: 'detached' });
    assert.match(await page.locator('main').innerText(), /no invitations waiting/i);

    // A second invitation, declined from the user menu's Invitations page.
    const again = await invite(author.email, 'author');
    const againText = await again.text();
    assert.equal(again.status, 200, againText);
    const already = JSON.parse(againText);
    assert.equal(already.alreadyMember, true, 'an author is already an author: nothing asked');
    const other = await stack.fetch('/api/admin/invitations', {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: admin.cookie },
      body: JSON.stringify({ email: author.email, name: 'ignored', role: 'editor' }),
    });
    assert.equal(other.status, 200, await other.text());
    await page.click('#user-menu-button');
    await page.click('#menu-invitations');
    await page.waitForSelector('#invitation-list li[data-role="editor"]');
    await page.locator('#invitation-list li[data-role="editor"] button[data-action="decline"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#flash.is-visible', { timeout: 15000 });
    assert.match(await page.locator('#flash').innerText(), /declined/i);
    assert.equal(await page.locator('#work-nav a[href="/editorial"]').count(), 0);
    const me = await page.evaluate(async () => (await (await fetch('/api/me')).json()).user.roles);
    assert.deepEqual(me, ['author', 'reviewer']);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
