'use strict';
// Mail a caller can cause, and what answers may not tell, over HTTP: limits per recipient, per
// client address and per account on every call that mails an address the caller names (over a
// limit the answer is the same and nothing is queued), the bounded name in a registration
// mail, registration and e-mail change that do not reveal whether an address has an account,
// and the per-account throttle on the password checks of /api/me/password, /api/me/email and
// /api/me/erasure. A private stack with small limits and the development mail catcher; the
// gateway trusts X-Forwarded-For from loopback so each test plays its own client addresses.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, createUser, logIn, waitForMail, devMails } = require('./stack.js');

const MAX_RECIPIENT = 2;
const MAX_ADDR = 4;
const MAX_ACCOUNT = 3;
const LOGIN_MAX_ACCOUNT = 3;
const LOGIN_WINDOW_S = 120;
const PASSWORD = 'correct horse battery staple';

let stack;
let admin;
let seq = 0;
let addrSeq = 0;
const freshEmail = (tag = 'ml') => `${tag}.${process.pid}.${Date.now()}.${++seq}@example.org`;
const freshAddr = () => `198.51.100.${(++addrSeq % 250) + 1}`;

const post = (path, body, { addr = freshAddr(), cookie } = {}) =>
  stack.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': addr, ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });

// The mails queued to `to` (the outbox, sent or not): what "no mail is queued" is about.
const queued = (to) =>
  Number(stack.sql(`SELECT count(*) FROM users.mail_outbox WHERE lower(to_addr) = lower('${to.replace(/'/g, "''")}')`)[0][0]);

// Status and body text of an answer.
async function answer(res) {
  return { status: res.status, body: await res.text() };
}

before(async () => {
  stack = startStack({
    env: {
      EJ_DEV_MAIL: 'true',
      EJ_TRUSTED_PROXIES: '127.0.0.1',
      EJ_MAIL_WINDOW_S: '600',
      EJ_MAIL_MAX_PER_RECIPIENT: String(MAX_RECIPIENT),
      EJ_MAIL_MAX_PER_ADDR: String(MAX_ADDR),
      EJ_MAIL_MAX_PER_ACCOUNT: String(MAX_ACCOUNT),
      EJ_LOGIN_MAX_PER_ACCOUNT: String(LOGIN_MAX_ACCOUNT),
      EJ_LOGIN_MAX_PER_ADDR: '1000',
      EJ_LOGIN_WINDOW_S: String(LOGIN_WINDOW_S),
    },
  });
  admin = await createUser(stack, { roles: ['admin'], name: 'Mail Admin' });
});

after(() => {
  if (stack) stack.stop();
});

describe('mail limits: over a limit the answer is the same and nothing is queued', () => {
  test(`password reset: at most ${MAX_RECIPIENT} mails to one recipient, whatever the client address`, async () => {
    const u = await createUser(stack, { name: 'Reset Target' });
    const answers = [];
    for (let i = 0; i < MAX_RECIPIENT + 3; i++) answers.push(await answer(await post('/api/auth/password/forgot', { email: u.email })));
    for (const a of answers) assert.deepEqual(a, answers[0], 'every answer alike');
    assert.ok(answers[0].status >= 200 && answers[0].status < 300, JSON.stringify(answers[0]));
    assert.equal(queued(u.email), MAX_RECIPIENT);
  });

  test('verification resend: the registration mail and resends share the recipient limit', async () => {
    const email = freshEmail('resend');
    const reg = await post('/api/auth/register', { name: 'Resend Person', email, password: PASSWORD, consent: true });
    assert.equal(reg.status, 202, await reg.text());
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await answer(await post('/api/auth/verify/resend', { email })));
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.equal(queued(email), MAX_RECIPIENT);
  });

  test(`one client address causes at most ${MAX_ADDR} mails, to whatever recipients`, async () => {
    const addr = '203.0.113.77';
    const people = [];
    for (let i = 0; i < MAX_ADDR + 2; i++) people.push(await createUser(stack, { name: `Addr ${i}` }));
    const answers = [];
    for (const p of people) answers.push(await answer(await post('/api/auth/password/forgot', { email: p.email }, { addr })));
    for (const a of answers) assert.deepEqual(a, answers[0]);
    const total = people.reduce((n, p) => n + queued(p.email), 0);
    assert.equal(total, MAX_ADDR);
    // Another address is not affected.
    await (await post('/api/auth/password/forgot', { email: people[people.length - 1].email })).arrayBuffer();
    assert.equal(queued(people[people.length - 1].email), 1);
  });

  test(`one account causes at most ${MAX_ACCOUNT} mails (e-mail change), to whatever recipients`, async () => {
    const u = await createUser(stack, { name: 'Account Limit' });
    const targets = [];
    const answers = [];
    for (let i = 0; i < MAX_ACCOUNT + 2; i++) {
      const to = freshEmail('change');
      targets.push(to);
      answers.push(await answer(await post('/api/me/email', { newEmail: to, password: u.password }, { cookie: u.cookie })));
    }
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.ok(answers[0].status >= 200 && answers[0].status < 300, JSON.stringify(answers[0]));
    assert.equal(targets.reduce((n, t) => n + queued(t), 0), MAX_ACCOUNT);
  });

  test('a registration over the limit is answered alike and queues nothing', async () => {
    const email = freshEmail('over');
    const addr = '203.0.113.88';
    // Spend the address's quota on other registrations first.
    for (let i = 0; i < MAX_ADDR; i++) {
      const r = await post('/api/auth/register', { name: 'Quota Spender', email: freshEmail('spend'), password: PASSWORD, consent: true }, { addr });
      await r.arrayBuffer();
    }
    const res = await post('/api/auth/register', { name: 'Too Late', email, password: PASSWORD, consent: true }, { addr });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { email });
    assert.equal(queued(email), 0, 'no mail over the limit');
  });
});

describe('registration mail carries no caller-chosen message', () => {
  test('the name in the greeting is short, without links, addresses or digits', async () => {
    const email = freshEmail('spam');
    const name = 'WIN 5000 EUR at http://spam.example/claim?x=1 or www.spam.example, mail win@spam.example NOW ' + 'x'.repeat(80);
    const res = await post('/api/auth/register', { name, email, password: PASSWORD, consent: true });
    assert.equal(res.status, 202, await res.clone().text());
    const mail = await waitForMail(stack, admin.cookie, email, { match: /confirm|verif/i });
    const text = mail.text.replace(/=\r?\n/g, '');
    assert.doesNotMatch(text, /spam\.example|https?:\/\/spam|www\.|5000|win@/i, text);
    const greeting = /Hello ([^,\n]*),/.exec(text);
    assert.ok(greeting, `a greeting in ${text}`);
    assert.ok([...greeting[1]].length <= 40, `greeting name "${greeting[1]}" at most 40 characters`);
    assert.match(greeting[1], /^[\p{L}' -]*$/u);
  });
});

describe('whether an address has an account is not told', () => {
  test('registering a taken address answers as a new one; the owner is told instead', async () => {
    const owner = await createUser(stack, { name: 'Existing Owner' });
    const fresh = freshEmail('new');
    const a = await post('/api/auth/register', { name: 'Zebra Caller', email: fresh, password: PASSWORD, consent: true });
    const b = await post('/api/auth/register', { name: 'Zebra Caller', email: owner.email, password: PASSWORD, consent: true });
    assert.equal(a.status, 202);
    assert.equal(b.status, a.status);
    const ab = await a.json();
    const bb = await b.json();
    assert.deepEqual(Object.keys(bb), Object.keys(ab));
    assert.deepEqual(bb, { email: owner.email });
    const note = await waitForMail(stack, admin.cookie, owner.email, { match: /tried to register/i });
    assert.doesNotMatch(note.text, /Zebra/, 'the caller chose nothing in the note');
    assert.match(note.text, /Existing Owner/, "the owner's own name");
    assert.ok(!/token=/.test(note.text), 'no link that acts on the account');
    // The owner's password is unchanged and no second account exists.
    await logIn(stack, owner.email, owner.password);
    const bad = await stack.fetch('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: owner.email, password: PASSWORD }),
    });
    assert.equal(bad.status, 401);
    await bad.arrayBuffer();
  });

  test('/api/me/email to an address another account holds answers as a free one and mails nothing', async () => {
    const holder = await createUser(stack, { name: 'Address Holder' });
    const u = await createUser(stack, { name: 'Address Wanter' });
    const free = await answer(await post('/api/me/email', { newEmail: freshEmail('free'), password: u.password }, { cookie: u.cookie }));
    const before = (await devMails(stack, admin.cookie, holder.email)).length;
    const taken = await answer(await post('/api/me/email', { newEmail: holder.email, password: u.password }, { cookie: u.cookie }));
    assert.deepEqual(taken, free);
    assert.equal(queued(holder.email), 0, 'nothing queued to the holder');
    assert.equal((await devMails(stack, admin.cookie, holder.email)).length, before);
    // Their own address is still refused plainly: it tells the caller nothing new.
    const own = await post('/api/me/email', { newEmail: u.email, password: u.password }, { cookie: u.cookie });
    assert.equal(own.status, 409);
    await own.arrayBuffer();
  });
});

describe('password checks of a signed-in person count against the sign-in throttle', () => {
  // A 429 with the error shape and a Retry-After of whole seconds within the window.
  async function expect429(res, what) {
    const text = await res.text();
    assert.equal(res.status, 429, `${what}: ${text}`);
    assert.equal(JSON.parse(text).error.code, 'too_many_requests');
    const ra = res.headers.get('retry-after');
    assert.match(ra || '', /^\d+$/, `Retry-After: ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= LOGIN_WINDOW_S);
  }

  const calls = {
    password: (u, pw) => post('/api/me/password', { currentPassword: pw, newPassword: 'a brand new password' }, { cookie: u.cookie }),
    email: (u, pw) => post('/api/me/email', { newEmail: freshEmail('thr'), password: pw }, { cookie: u.cookie }),
    erasure: (u, pw) => post('/api/me/erasure', { password: pw }, { cookie: u.cookie }),
  };

  for (const [name, call] of Object.entries(calls)) {
    test(`/api/me/${name}: after ${LOGIN_MAX_ACCOUNT} wrong passwords, 429 without checking, and sign-in is locked too`, async () => {
      const u = await createUser(stack, { name: `Guess ${name}` });
      for (let i = 0; i < LOGIN_MAX_ACCOUNT; i++) {
        const res = await call(u, `wrong guess ${i}`);
        assert.equal(res.status, 400, await res.text());
      }
      await expect429(await call(u, u.password), 'the right password while locked');
      for (const other of Object.values(calls)) await expect429(await other(u, u.password), 'every password check');
      await expect429(
        await stack.fetch('/api/auth/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: u.email, password: u.password }),
        }),
        'sign-in shares the count',
      );
    });
  }
});
