'use strict';
// The consent ledger over HTTP: an admin publishes a required version and every other API call
// of a signed-in person is refused with 403 consent_required (server-side, on every gateway
// replica, even for a cached session) until they accept it; withdrawal is recorded; a new
// registration must consent. A private stack of its own, since a required version concerns
// everyone on it.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startGateway, createUser, logIn, waitForMail } = require('./stack.js');
const { expectOk, expectError } = require('./expect.js');

const PASSWORD = 'correct horse battery staple';
let stack;
let gw2;
let admin;
let seq = 0;
const freshEmail = () => `con.${process.pid}.${Date.now()}.${++seq}@example.org`;
const json = (method, body, headers = {}) => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const as = (who) => ({ cookie: who.cookie });

const patchName = (via, who, name) => via.fetch('/api/me', json('PATCH', { name }, as(who)));

before(async () => {
  stack = startStack({ env: { EJ_SESSION_CACHE_MS: '60000', EJ_DEV_MAIL: 'true', EJ_MAIL_RETRY_MIN_S: '1', EJ_MAIL_RETRY_MAX_S: '2' } });
  gw2 = await startGateway(stack);
  admin = await createUser(stack, { roles: ['admin'], name: 'Consent Admin' });
});

after(() => {
  if (stack) stack.stop();
});

describe('consent', () => {
  let u;
  let version;

  test('before any text is published, work goes on and /api/consent says version 0', async () => {
    u = await createUser(stack, { roles: ['author'], name: 'Consent Person' });
    const c = await expectOk(await stack.fetch('/api/consent'));
    assert.ok(!c.version, `no version yet: ${JSON.stringify(c)}`);
    await expectOk(await patchName(stack, u, 'Consent Person'));
    await expectOk(await patchName(gw2, u, 'Consent Person')); // cached on replica 2 now
  });

  test('a required version is published: other work is 403 consent_required on every replica', async () => {
    const pub = await expectOk(
      await stack.fetch('/api/admin/consent', json('PUT', { markdown: '# Consent v1\n\nWe process your data. <script>alert(1)</script>', required: true }, as(admin))),
      'publish',
    );
    version = pub.version;
    assert.ok(version >= 1);
    assert.equal(pub.required, true);
    assert.ok(!/<script>/i.test(pub.html || ''), 'raw HTML is not passed through');
    await expectError(await patchName(stack, u, 'Blocked'), 403, 'consent_required');
    await expectError(await patchName(gw2, u, 'Blocked'), 403, 'consent_required');
  });

  test('the admin owes consent too, for everything but the consent routes', async () => {
    await expectError(await stack.fetch('/api/admin/users', { headers: as(admin) }), 403, 'consent_required');
    await expectOk(await stack.fetch('/api/consent/accept', json('POST', { version }, as(admin))));
    await expectOk(await stack.fetch('/api/admin/users', { headers: as(admin) }));
  });

  test('what is needed to read and give consent, see oneself, export and sign out still works', async () => {
    const m = await expectOk(await stack.fetch('/api/me', { headers: as(u) }));
    assert.equal(m.consentRequired, true);
    assert.equal(Number(m.currentConsentVersion), version);
    await expectOk(await stack.fetch('/api/consent', { headers: as(u) }));
    await expectOk(await stack.fetch('/api/privacy', { headers: as(u) }));
    const exp = await stack.fetch('/api/me/export', { headers: as(u) });
    assert.equal(exp.status, 200);
    await exp.arrayBuffer();
    const name = (await expectOk(await stack.fetch(`/api/admin/users/${u.user.id}`, { headers: as(admin) }))).user.name;
    assert.equal(name, 'Consent Person', 'the refused update wrote nothing');
  });

  test('accepting an old or unknown version is refused; accepting the current one unblocks at once', async () => {
    const bad = await stack.fetch('/api/consent/accept', json('POST', { version: version + 5 }, as(u)));
    const badText = await bad.text();
    assert.ok([400, 409].includes(bad.status), `status ${bad.status}: ${badText}`);
    assert.equal(JSON.parse(badText).error.field, 'version');
    await expectError(await patchName(stack, u, 'Still blocked'), 403, 'consent_required');
    await expectOk(await stack.fetch('/api/consent/accept', json('POST', { version }, as(u))));
    await expectOk(await patchName(gw2, u, 'Accepted Person'));
    await expectOk(await patchName(stack, u, 'Accepted Person'));
    const m = await expectOk(await stack.fetch('/api/me', { headers: as(u) }));
    assert.ok(!m.consentRequired, 'no consent owed');
    assert.equal(Number(m.user.consentVersion), version);
  });

  test('the ledger records who accepted which version and when', async () => {
    const act = await expectOk(await stack.fetch(`/api/admin/activity?kind=consent&user_id=${u.user.id}`, { headers: as(admin) }));
    assert.ok(act.entries.length >= 1, 'a consent entry');
    const e = act.entries[0];
    assert.equal(e.userId, u.user.id);
    assert.ok(Math.abs(Number(e.atMs) - Date.now()) < 10 * 60 * 1000);
    const rows = stack.sql(`SELECT count(*) FROM users.consent_ledger WHERE user_id::text = '${u.user.id}'`);
    assert.ok(Number(rows[0][0]) >= 1, 'a ledger row in PostgreSQL');
    const stats = await expectOk(await stack.fetch('/api/admin/consent', { headers: as(admin) }));
    assert.equal(Number(stats.currentVersion), version);
    assert.ok(Number(stats.acceptedCurrent) >= 2, `stats ${JSON.stringify(stats)}`);
  });

  test('withdrawal is recorded and blocks again while the version is required', async () => {
    await expectOk(await stack.fetch('/api/consent/withdraw', json('POST', {}, as(u))));
    const act = await expectOk(await stack.fetch(`/api/admin/activity?kind=consent_withdrawn&user_id=${u.user.id}`, { headers: as(admin) }));
    assert.ok(act.entries.length >= 1, 'a consent_withdrawn entry');
    const m = await expectOk(await stack.fetch('/api/me', { headers: as(u) }));
    assert.ok(!m.user.consentVersion, 'no accepted version after withdrawal');
    await expectError(await patchName(gw2, u, 'Withdrawn'), 403, 'consent_required');
  });

  test('registration must consent to the required version', async () => {
    const email = freshEmail();
    const e = await expectError(
      await stack.fetch('/api/auth/register', json('POST', { name: 'New', email, password: PASSWORD })),
      400,
      'invalid_argument',
    );
    assert.equal(e.field, 'consent');
    const login = await stack.fetch('/api/auth/login', json('POST', { email, password: PASSWORD }));
    assert.equal(login.status, 401, 'no account from the refused registration');
    await login.arrayBuffer();
    const ok = await stack.fetch('/api/auth/register', json('POST', { name: 'New', email, password: PASSWORD, consent: true, consentVersion: version }));
    assert.equal(ok.status, 202, await ok.clone().text());
    await ok.arrayBuffer();
    const s = await logIn(stack, email, PASSWORD);
    assert.equal(Number(s.user.consentVersion), version, 'consent captured at registration');
    await expectOk(await patchName(stack, s, 'New Person'), 'not blocked');
  });

  test('a registration against an outdated form version is asked again', async () => {
    const res = await stack.fetch(
      '/api/auth/register',
      json('POST', { name: 'Old Form', email: freshEmail(), password: PASSWORD, consent: true, consentVersion: version + 1 }),
    );
    const text = await res.text();
    assert.ok([400, 409].includes(res.status), `status ${res.status}: ${text}`);
    assert.equal(JSON.parse(text).error.field, 'consent');
  });

  test('a new version that is not required blocks nobody', async () => {
    const v = await createUser(stack, { roles: ['author'] });
    await expectOk(await stack.fetch('/api/consent/accept', json('POST', { version }, as(v))));
    await expectOk(await patchName(gw2, v, 'Before Optional'));
    const pub = await expectOk(
      await stack.fetch('/api/admin/consent', json('PUT', { markdown: 'Consent v2, optional.', required: false }, as(admin))),
      'publish optional',
    );
    assert.equal(pub.version, version + 1);
    await expectOk(await patchName(stack, v, 'After Optional'));
    await expectOk(await patchName(gw2, v, 'After Optional'));
    const m = await expectOk(await stack.fetch('/api/me', { headers: as(v) }));
    assert.ok(!m.consentRequired);
    assert.equal(Number(m.currentConsentVersion), version + 1);
  });

  test('the last admin cannot remove their own admin role', async () => {
    const res = await stack.fetch(`/api/admin/users/${admin.user.id}/roles/admin`, json('DELETE', undefined, as(admin)));
    const text = await res.text();
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}: ${text}`);
    await expectOk(await stack.fetch('/api/admin/users', { headers: as(admin) }), 'still an admin');
  });
});

describe('mail while the mail server is down', () => {
  test('a registration is answered at once and its mail arrives once the server is back', async () => {
    await stack.kill('smtp-catcher', 'SIGTERM');
    const email = freshEmail();
    const t0 = Date.now();
    const c = await expectOk(await stack.fetch('/api/consent'));
    const res = await stack.fetch('/api/auth/register', json('POST', { name: 'Patient Person', email, password: PASSWORD, consent: true, consentVersion: c.version }));
    const took = Date.now() - t0;
    assert.equal(res.status, 202, await res.text());
    assert.ok(took < 2000, `answered in ${took} ms without the mail server`);
    await new Promise((r) => setTimeout(r, 2500)); // a failed attempt or two
    stack.startOne('smtp-catcher');
    const mail = await waitForMail(stack, admin.cookie, email, { match: /verif|confirm/i, timeoutMs: 30000 });
    assert.ok(mail, 'the mail was not lost');
  });
});
