'use strict';
// Throttling over HTTP. Login: per account and per client address, a clear 429 with
// Retry-After, and a count kept in PostgreSQL that every gateway replica shares (a second
// gateway, and a gateway restart). Password checks of a signed-in person (/api/me/password,
// /api/me/email, /api/me/erasure) count against the same per-account throttle. Mail a caller
// can cause: limits per recipient, per client address and per account (over a limit the answer
// is the same and nothing is queued), the bounded name in a registration mail, and
// registration and e-mail change that do not tell whether an address has an account. A private
// stack with small limits; the gateway trusts X-Forwarded-For from loopback so each test can
// play its own client address. Mail is read from the service's outbox (no mail catcher here).

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startGateway, logIn, createUser } = require('./stack.js');

const MAX_ACCOUNT = 3;
const MAX_ADDR = 6;
const WINDOW_S = 120;
const MAIL_MAX_RECIPIENT = 2;
const MAIL_MAX_ADDR = 4;
const MAIL_MAX_ACCOUNT = 3;
const PASSWORD = 'correct horse battery staple';

let stack;
let gw2;
let seq = 0;
let addrSeq = 0;
const freshEmail = () => `thr.${process.pid}.${Date.now()}.${++seq}@example.org`;
const freshAddr = () => `198.51.100.${++addrSeq}`; // TEST-NET-2, one per client

const login = (via, email, password, addr) =>
  via.fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': addr },
    body: JSON.stringify({ email, password }),
  });

async function account() {
  const email = freshEmail();
  const res = await stack.fetch('/api/auth/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Throttle Person', email, password: PASSWORD, consent: true }),
  });
  assert.equal(res.status, 202, await res.text());
  return email;
}

async function expectStatus(res, status, what) {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: ${text}`);
  return text ? JSON.parse(text) : {};
}

// A 429 with the error shape and a Retry-After of whole seconds within the window.
async function expect429(res, what) {
  const body = await expectStatus(res, 429, what);
  assert.equal(body.error.code, 'too_many_requests');
  assert.ok(body.error.message.length > 0);
  const ra = res.headers.get('retry-after');
  assert.match(ra || '', /^\d+$/, `Retry-After: ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= WINDOW_S, `Retry-After ${ra} within the window`);
  return body.error;
}

before(async () => {
  stack = startStack({
    env: {
      EJ_LOGIN_MAX_PER_ACCOUNT: String(MAX_ACCOUNT),
      EJ_LOGIN_MAX_PER_ADDR: String(MAX_ADDR),
      EJ_LOGIN_WINDOW_S: String(WINDOW_S),
      EJ_TRUSTED_PROXIES: '127.0.0.1',
      EJ_SESSION_CACHE_MS: '60000',
      EJ_MAIL_WINDOW_S: '600',
      EJ_MAIL_MAX_PER_RECIPIENT: String(MAIL_MAX_RECIPIENT),
      EJ_MAIL_MAX_PER_ADDR: String(MAIL_MAX_ADDR),
      EJ_MAIL_MAX_PER_ACCOUNT: String(MAIL_MAX_ACCOUNT),
    },
  });
  gw2 = await startGateway(stack);
});

after(() => {
  if (stack) stack.stop();
});

describe('without EJ_DEV_MAIL', () => {
  test('the caught-mail route does not exist, even for an admin', async () => {
    const a = await createUser(stack, { roles: ['admin'] });
    const res = await stack.fetch('/api/admin/dev-mail', { headers: { cookie: a.cookie } });
    assert.equal(res.status, 404, await res.text());
  });
});

describe('per account', () => {
  test(`after ${MAX_ACCOUNT} failed logins the account answers 429 with Retry-After, from any address`, async () => {
    const email = await account();
    for (let i = 0; i < MAX_ACCOUNT; i++) {
      await expectStatus(await login(stack, email, 'wrong password!', freshAddr()), 401, `failure ${i + 1}`);
    }
    await expect429(await login(stack, email, 'wrong password!', freshAddr()), 'one more failure');
    // The right password does not get through while the account is throttled either: the
    // limit must stop guessing, whichever guess is right.
    await expect429(await login(stack, email, PASSWORD, freshAddr()), 'right password while throttled');
  });

  test('another account from the same address is not affected', async () => {
    const victim = await account();
    const addr = freshAddr();
    for (let i = 0; i < MAX_ACCOUNT; i++) await (await login(stack, victim, 'nope nope nope', addr)).arrayBuffer();
    const other = await account();
    await expectStatus(await login(stack, other, PASSWORD, addr), 200, 'other account');
  });

  test('the failures are counted in PostgreSQL', async () => {
    const email = await account();
    await expectStatus(await login(stack, email, 'wrong password!', freshAddr()), 401, 'failure');
    const rows = stack.sql("SELECT count(*) FROM users.throttle_hits WHERE bucket = 'login.account'");
    assert.ok(Number(rows[0][0]) >= 1, 'rows in users.throttle_hits');
  });
});

describe('per client address', () => {
  test(`after ${MAX_ADDR} failures across different accounts the address answers 429`, async () => {
    const addr = freshAddr();
    const emails = [];
    for (let i = 0; i <= MAX_ADDR; i++) emails.push(await account());
    for (let i = 0; i < MAX_ADDR; i++) {
      await expectStatus(await login(stack, emails[i], 'wrong password!', addr), 401, `failure ${i + 1}`);
    }
    await expect429(await login(stack, emails[MAX_ADDR], PASSWORD, addr), 'a fresh account from the same address');
    // Another address signs the same account in.
    await expectStatus(await login(stack, emails[MAX_ADDR], PASSWORD, freshAddr()), 200, 'another address');
  });

  test('guesses at addresses that have no account count too', async () => {
    const addr = freshAddr();
    for (let i = 0; i < MAX_ADDR; i++) {
      await expectStatus(await login(stack, freshEmail(), 'any password 1', addr), 401, `unknown ${i + 1}`);
    }
    const real = await account();
    await expect429(await login(stack, real, PASSWORD, addr), 'a real account from the spraying address');
  });

  test('a forged left-most X-Forwarded-For hop does not escape the limit', async () => {
    // The stack trusts 127.0.0.1 as a proxy: the right-most hop it did not add itself counts,
    // whatever a client wrote in front of it.
    const addr = freshAddr();
    const emails = [];
    for (let i = 0; i <= MAX_ADDR; i++) emails.push(await account());
    for (let i = 0; i < MAX_ADDR; i++) {
      const forged = `203.0.113.${i + 1}, ${addr}`;
      await expectStatus(await login(stack, emails[i], 'wrong password!', forged), 401, `failure ${i + 1}`);
    }
    await expect429(await login(stack, emails[MAX_ADDR], PASSWORD, `203.0.113.99, ${addr}`), 'a forged left-most hop changes nothing');
  });
});

describe('shared by every gateway replica', () => {
  test('failures through two gateways add up to one limit', async () => {
    const email = await account();
    await expectStatus(await login(stack, email, 'wrong password!', freshAddr()), 401, 'gateway 1');
    await expectStatus(await login(gw2, email, 'wrong password!', freshAddr()), 401, 'gateway 2');
    await expectStatus(await login(stack, email, 'wrong password!', freshAddr()), 401, 'gateway 1 again');
    await expect429(await login(gw2, email, 'wrong password!', freshAddr()), 'the limit holds on gateway 2');
    await expect429(await login(stack, email, 'wrong password!', freshAddr()), 'and on gateway 1');
  });

  test('the count survives a restart of the gateway', async () => {
    const email = await account();
    for (let i = 0; i < MAX_ACCOUNT; i++) await (await login(stack, email, 'wrong password!', freshAddr())).arrayBuffer();
    await stack.kill('gateway', 'SIGTERM');
    stack.startOne('gateway');
    await expect429(await login(stack, email, 'wrong password!', freshAddr()), 'after the restart');
  });

  test('a successful login is not throttled by other people\'s failures elsewhere', async () => {
    const email = await account();
    const s = await logIn(stack, email, PASSWORD, {});
    assert.ok(s.cookie);
  });
});

// ---- mail a caller can cause ----------------------------------------------------------------

let mailAddrSeq = 0;
const mailAddr = () => `192.0.2.${(++mailAddrSeq % 250) + 1}`; // TEST-NET-1, one per client

const post = (path, body, { addr = mailAddr(), cookie } = {}) =>
  stack.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': addr, ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });

const sqlText = (t) => t.replace(/'/g, "''");
// The mails queued to `to` (the outbox, sent or not): what "no mail is queued" is about.
const queued = (to) => Number(stack.sql(`SELECT count(*) FROM users.mail_outbox WHERE lower(to_addr) = lower('${sqlText(to)}')`)[0][0]);
// The newest mail queued to `to` whose subject or body matches the regular expression `re`
// (PostgreSQL's, case-insensitive): its subject and body as one text.
function queuedMail(to, re) {
  const rows = stack.sql(
    `SELECT subject || E'\\n' || body FROM users.mail_outbox WHERE lower(to_addr) = lower('${sqlText(to)}') ` +
      `AND (subject ~* '${sqlText(re)}' OR body ~* '${sqlText(re)}') ORDER BY created_at DESC, id LIMIT 1`,
  );
  assert.ok(rows.length > 0, `a mail to ${to} matching ${re}`);
  return rows.map((r) => r.join('\t')).join('\n');
}

async function answer(res) {
  return { status: res.status, body: await res.text() };
}

const mailEmail = (tag) => `${tag}.${process.pid}.${Date.now()}.${++seq}@example.org`;

describe('mail limits: over a limit the answer is the same and nothing is queued', () => {
  test(`password reset: at most ${MAIL_MAX_RECIPIENT} mails to one recipient, whatever the client address`, async () => {
    const u = await createUser(stack, { name: 'Reset Target' });
    const answers = [];
    for (let i = 0; i < MAIL_MAX_RECIPIENT + 3; i++) answers.push(await answer(await post('/api/auth/password/forgot', { email: u.email })));
    for (const a of answers) assert.deepEqual(a, answers[0], 'every answer alike');
    assert.ok(answers[0].status >= 200 && answers[0].status < 300, JSON.stringify(answers[0]));
    assert.equal(queued(u.email), MAIL_MAX_RECIPIENT);
  });

  test('verification resend: the registration mail and resends share the recipient limit', async () => {
    const email = mailEmail('resend');
    const reg = await post('/api/auth/register', { name: 'Resend Person', email, password: PASSWORD, consent: true });
    assert.equal(reg.status, 202, await reg.text());
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await answer(await post('/api/auth/verify/resend', { email })));
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.equal(queued(email), MAIL_MAX_RECIPIENT);
  });

  test(`one client address causes at most ${MAIL_MAX_ADDR} mails, to whatever recipients; registrations over it are answered alike`, async () => {
    const addr = '203.0.113.77';
    const emails = [];
    for (let i = 0; i < MAIL_MAX_ADDR + 2; i++) {
      const email = mailEmail('addr');
      emails.push(email);
      const res = await post('/api/auth/register', { name: 'Addr Person', email, password: PASSWORD, consent: true }, { addr });
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { email });
    }
    assert.deepEqual(emails.map(queued), emails.map((_, i) => (i < MAIL_MAX_ADDR ? 1 : 0)), 'no mail over the limit');
    // Another address is not affected: the account made without a mail gets its link there.
    const last = emails[emails.length - 1];
    await (await post('/api/auth/verify/resend', { email: last })).arrayBuffer();
    assert.equal(queued(last), 1);
  });

  test(`one account causes at most ${MAIL_MAX_ACCOUNT} mails (e-mail change), to whatever recipients`, async () => {
    const u = await createUser(stack, { name: 'Account Limit' });
    const targets = [];
    const answers = [];
    for (let i = 0; i < MAIL_MAX_ACCOUNT + 2; i++) {
      const to = mailEmail('change');
      targets.push(to);
      answers.push(await answer(await post('/api/me/email', { newEmail: to, password: u.password }, { cookie: u.cookie })));
    }
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.ok(answers[0].status >= 200 && answers[0].status < 300, JSON.stringify(answers[0]));
    assert.equal(targets.reduce((n, t) => n + queued(t), 0), MAIL_MAX_ACCOUNT);
  });
});

describe('registration mail carries no caller-chosen message', () => {
  test('the name in the greeting is short, without links, addresses or digits', async () => {
    const email = mailEmail('spam');
    const name = 'WIN 5000 EUR at http://spam.example/claim?x=1 or www.spam.example, mail win@spam.example NOW ' + 'x'.repeat(80);
    const res = await post('/api/auth/register', { name, email, password: PASSWORD, consent: true });
    assert.equal(res.status, 202, await res.clone().text());
    const text = queuedMail(email, 'confirm|verif');
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
    const fresh = mailEmail('new');
    const a = await post('/api/auth/register', { name: 'Zebra Caller', email: fresh, password: PASSWORD, consent: true });
    const b = await post('/api/auth/register', { name: 'Zebra Caller', email: owner.email, password: PASSWORD, consent: true });
    assert.equal(a.status, 202);
    assert.equal(b.status, a.status);
    const ab = await a.json();
    const bb = await b.json();
    assert.deepEqual(Object.keys(bb), Object.keys(ab));
    assert.deepEqual(bb, { email: owner.email });
    const note = queuedMail(owner.email, 'tried to register');
    assert.doesNotMatch(note, /Zebra/, 'the caller chose nothing in the note');
    assert.match(note, /Existing Owner/, "the owner's own name");
    assert.ok(!/token=/.test(note), 'no link that acts on the account');
    // The owner's password is unchanged and no second account exists.
    await logIn(stack, owner.email, owner.password);
    // (From an address of its own: the last test counts the loopback address's failures.)
    const bad = await post('/api/auth/login', { email: owner.email, password: PASSWORD });
    assert.equal(bad.status, 401);
    await bad.arrayBuffer();
  });

  test('/api/me/email to an address another account holds answers as a free one and mails nothing', async () => {
    const holder = await createUser(stack, { name: 'Address Holder' });
    const u = await createUser(stack, { name: 'Address Wanter' });
    const free = await answer(await post('/api/me/email', { newEmail: mailEmail('free'), password: u.password }, { cookie: u.cookie }));
    const taken = await answer(await post('/api/me/email', { newEmail: holder.email, password: u.password }, { cookie: u.cookie }));
    assert.deepEqual(taken, free);
    assert.equal(queued(holder.email), 0, 'nothing queued to the holder');
    // Their own address is still refused plainly: it tells the caller nothing new.
    const own = await post('/api/me/email', { newEmail: u.email, password: u.password }, { cookie: u.cookie });
    assert.equal(own.status, 409);
    await own.arrayBuffer();
  });
});

describe('password checks of a signed-in person count against the sign-in throttle', () => {
  const calls = {
    password: (u, pw) => post('/api/me/password', { currentPassword: pw, newPassword: 'a brand new password' }, { cookie: u.cookie }),
    email: (u, pw) => post('/api/me/email', { newEmail: mailEmail('thr'), password: pw }, { cookie: u.cookie }),
    erasure: (u, pw) => post('/api/me/erasure', { password: pw }, { cookie: u.cookie }),
  };

  for (const [name, call] of Object.entries(calls)) {
    test(`/api/me/${name}: after ${MAX_ACCOUNT} wrong passwords, 429 without checking, and sign-in is locked too`, async () => {
      const u = await createUser(stack, { name: `Guess ${name}` });
      for (let i = 0; i < MAX_ACCOUNT; i++) {
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

describe('a gateway that trusts no proxy', () => {
  // Last in the file: it spends the loopback address's own allowance.
  test('ignores X-Forwarded-For: failures from "different" addresses count for the peer', async () => {
    const plain = await startGateway(stack, { EJ_TRUSTED_PROXIES: '' });
    const emails = [];
    for (let i = 0; i <= MAX_ADDR; i++) emails.push(await account());
    for (let i = 0; i < MAX_ADDR; i++) {
      await expectStatus(await login(plain, emails[i], 'wrong password!', freshAddr()), 401, `failure ${i + 1}`);
    }
    await expect429(await login(plain, emails[MAX_ADDR], PASSWORD, freshAddr()), 'the peer address is throttled');
    plain.stop();
  });
});
