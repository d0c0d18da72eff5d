'use strict';
// Invitations to a role, over HTTP: an editor's invitation to an existing account is a request
// that person answers after signing in (the role comes only on acceptance, also for an admin's
// account); the inviter learns the name and whether the person holds the role, nothing of the
// account; a new address gets an account with no role until the mailed link is used; only the
// invitee can answer, once. One private stack with the development mail catcher.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, createUser, logIn, waitForMail, mailLink, devMails } = require('./stack.js');
const { expectOk, expectError } = require('./expect.js');

let stack;
let admin;
let editor;
let seq = 0;
const freshEmail = (tag) => `${tag}.${process.pid}.${Date.now()}.${++seq}@example.org`;

const json = (method, body, headers = {}) => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const post = (body, headers) => json('POST', body ?? {}, headers);
const as = (who) => ({ cookie: who.cookie });

const invite = (who, body) => stack.fetch('/api/admin/invitations', post(body, as(who)));
const rolesOf = async (who) => (await expectOk(await stack.fetch('/api/me', { headers: as(who) }), 'me')).user.roles;
const mine = async (who) => (await expectOk(await stack.fetch('/api/me/invitations', { headers: as(who) }), 'my invitations')).invitations || [];
const answer = (who, id, verb) => stack.fetch(`/api/me/invitations/${id}/${verb}`, post({}, as(who)));

// Only what an inviter needs: no account record, no last login, consent, password or e-mail state.
function assertInviterView(body) {
  for (const k of Object.keys(body)) assert.ok(['name', 'email', 'alreadyMember'].includes(k), `unexpected field ${k} in ${JSON.stringify(body)}`);
  assert.equal(typeof body.name, 'string');
  assert.ok(body.name.length > 0);
}

before(async () => {
  stack = startStack({ env: { EJ_DEV_MAIL: 'true', EJ_SESSION_CACHE_MS: '60000' } });
  admin = await createUser(stack, { roles: ['admin'], name: 'Invitations Admin' });
  editor = await createUser(stack, { roles: ['editor'], name: 'Edna Editor' });
});

after(() => {
  if (stack) stack.stop();
});

describe('an existing account', () => {
  test('an editor inviting an admin adds nothing until the admin accepts', async () => {
    const other = await createUser(stack, { roles: ['admin'], name: 'Other Admin' });
    const body = await expectOk(await invite(editor, { email: other.email.toUpperCase(), name: 'Typed Name', role: 'reviewer' }), 'invite');
    assertInviterView(body);
    assert.equal(body.name, 'Other Admin', 'the name on the account');
    assert.equal(body.alreadyMember ?? false, false);
    assert.deepEqual(await rolesOf(other), ['admin'], 'nothing granted by the invitation');

    const mail = await waitForMail(stack, admin.cookie, other.email, { match: /invit/i });
    assert.match(mail.text, /Edna Editor/);
    assert.match(mail.text, /reviewer/);
    assert.match(mail.text, /\/invitations/);
    assert.doesNotMatch(mail.text, /token=/, 'a signed-in answer, no password link');

    const list = await mine(other);
    assert.equal(list.length, 1);
    assert.equal(list[0].role, 'reviewer');
    assert.equal(list[0].inviterName, 'Edna Editor');
    assert.ok(Number(list[0].expiresAtMs) > Date.now());
    // Nobody else answers it: not the inviter, not an admin.
    await expectError(await answer(editor, list[0].id, 'accept'), 404, 'not_found');
    await expectError(await answer(admin, list[0].id, 'accept'), 404, 'not_found');
    assert.deepEqual(await rolesOf(other), ['admin']);

    const acc = await expectOk(await answer(other, list[0].id, 'accept'), 'accept');
    assert.equal(acc.state, 'accepted');
    assert.deepEqual(await rolesOf(other), ['admin', 'reviewer'], 'granted on acceptance, seen at once despite the session cache');
    assert.deepEqual(await mine(other), []);
    await expectError(await answer(other, list[0].id, 'accept'), 404, 'not_found');

    const act = await expectOk(await stack.fetch(`/api/admin/activity?kind=invitation_accepted&userId=${other.user.id}`, { headers: as(admin) }));
    assert.equal(act.entries.length, 1);
    assert.match(act.entries[0].details, /reviewer/);
  });

  test('a declined invitation grants nothing and is gone', async () => {
    const author = await createUser(stack, { roles: ['author'], name: 'Ann Author' });
    await expectOk(await invite(editor, { email: author.email, name: 'x', role: 'reviewer' }));
    const [inv] = await mine(author);
    assert.ok(inv, 'pending');
    const dec = await expectOk(await answer(author, inv.id, 'decline'), 'decline');
    assert.equal(dec.state, 'declined');
    assert.deepEqual(await rolesOf(author), ['author']);
    assert.deepEqual(await mine(author), []);
    await expectError(await answer(author, inv.id, 'accept'), 404, 'not_found');
    // Asked again later: a new pending invitation.
    await expectOk(await invite(editor, { email: author.email, name: 'x', role: 'reviewer' }));
    assert.equal((await mine(author)).length, 1);
  });

  test('inviting again renews the one pending invitation; a member is told so and not mailed', async () => {
    const rev = await createUser(stack, { roles: ['reviewer'], name: 'Rita Reviewer' });
    const already = await expectOk(await invite(editor, { email: rev.email, name: 'x', role: 'reviewer' }));
    assertInviterView(already);
    assert.equal(already.alreadyMember, true);
    assert.equal(already.name, 'Rita Reviewer');
    await expectOk(await invite(editor, { email: rev.email, name: 'x', role: 'author' }));
    await expectOk(await invite(editor, { email: rev.email, name: 'x', role: 'author' }));
    const list = await mine(rev);
    assert.equal(list.length, 1, 'one pending invitation per person and role');
    assert.equal(list[0].role, 'author');
    const mails = (await devMails(stack, admin.cookie, rev.email)).filter((m) => /invit/i.test(m.subject));
    assert.ok(mails.every((m) => /author/.test(m.text)), 'no mail for the role already held');
  });

  test('only an admin invites to editor or admin; the answer names the field', async () => {
    const someone = await createUser(stack, { roles: ['author'] });
    await expectError(await invite(editor, { email: someone.email, name: 'x', role: 'admin' }), 403, 'forbidden');
    await expectError(await invite(editor, { email: someone.email, name: 'x', role: 'editor' }), 403, 'forbidden');
    const bad = await expectError(await invite(editor, { email: someone.email, name: 'x', role: 'king' }), 400, 'invalid_argument');
    assert.equal(bad.field, 'role');
    assert.deepEqual(await mine(someone), []);
    const ok = await expectOk(await invite(admin, { email: someone.email, name: 'x', role: 'editor' }));
    assertInviterView(ok);
    assert.deepEqual(await rolesOf(someone), ['author']);
    assert.equal((await mine(someone))[0].role, 'editor');
  });

  test('the invitee list and answers need a session and a real id', async () => {
    await expectError(await stack.fetch('/api/me/invitations'), 401);
    await expectError(await stack.fetch('/api/me/invitations/00000000-0000-4000-8000-000000000000/accept', post({})), 401);
    const e = await expectError(await answer(editor, 'not-an-id', 'accept'), 400, 'invalid_argument');
    assert.equal(e.field, 'invitation_id');
    await expectError(await answer(editor, '00000000-0000-4000-8000-000000000000', 'decline'), 404, 'not_found');
  });
});

describe('the invitee\'s data', () => {
  test('the export lists invitations; erasure removes them', async () => {
    const p = await createUser(stack, { roles: ['author'], name: 'Paula Private' });
    await expectOk(await invite(editor, { email: p.email, name: 'x', role: 'reviewer' }));
    const exp = await stack.fetch('/api/me/export', { headers: as(p) });
    const doc = JSON.parse(await exp.text());
    assert.equal(exp.status, 200);
    const held = doc.services.users.invitations || [];
    assert.equal(held.length, 1, `invitations in the export: ${JSON.stringify(doc).slice(0, 400)}`);
    assert.equal(held[0].role, 'reviewer');
    await expectOk(await stack.fetch(`/api/admin/users/${p.user.id}/erase`, post({}, as(admin))), 'erase');
    assert.deepEqual(stack.sql(`SELECT count(*) FROM users.invitations WHERE user_id = '${p.user.id}'`), [['0']]);
  });
});

describe('a new address', () => {
  test('the account has no role until the mailed link is used; then it has the invited one', async () => {
    const email = freshEmail('newcomer');
    const body = await expectOk(await invite(editor, { email, name: 'New Comer', role: 'reviewer' }));
    assertInviterView(body);
    assert.equal(body.name, 'New Comer');
    assert.equal(body.email, email);
    assert.equal(body.alreadyMember ?? false, false);
    const users = await expectOk(await stack.fetch(`/api/admin/users?query=${encodeURIComponent(email)}`, { headers: as(admin) }));
    assert.equal(users.users.length, 1);
    assert.deepEqual(users.users[0].roles ?? [], [], 'no role before acceptance');

    const { token } = mailLink(await waitForMail(stack, admin.cookie, email, { match: /invit/i }));
    await expectOk(await stack.fetch('/api/auth/invitation/accept', post({ token, password: 'a newcomer password' })), 'accept link');
    const s = await logIn(stack, email, 'a newcomer password');
    assert.deepEqual(await rolesOf(s), ['reviewer']);
    assert.deepEqual(await mine(s), []);
  });

  test('an account invited twice before setting its password: the link accepts its own invitation, the other waits', async () => {
    const email = freshEmail('twice');
    await expectOk(await invite(editor, { email, name: 'Twice Asked', role: 'reviewer' }));
    await waitForMail(stack, admin.cookie, email, { match: /invit/i });
    await expectOk(await invite(editor, { email, name: 'Twice Asked', role: 'author' }));
    const second = await waitForMail(stack, admin.cookie, email, { match: /invit/i, after: 1 });
    assert.match(second.text, /author/);
    await expectOk(await stack.fetch('/api/auth/invitation/accept', post({ token: mailLink(second).token, password: 'twice asked password' })));
    const s = await logIn(stack, email, 'twice asked password');
    assert.deepEqual(await rolesOf(s), ['author']);
    const left = await mine(s);
    assert.equal(left.length, 1);
    assert.equal(left[0].role, 'reviewer');
    await expectOk(await answer(s, left[0].id, 'accept'));
    assert.deepEqual(await rolesOf(s), ['author', 'reviewer']);
  });
});
