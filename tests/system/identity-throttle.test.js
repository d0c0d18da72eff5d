'use strict';
// Login throttling over HTTP: per account and per client address, a clear 429 with
// Retry-After, and a count kept in PostgreSQL that every gateway replica shares (a second
// gateway, and a gateway restart). A private stack with small limits; the gateway trusts
// X-Forwarded-For from loopback so each test can play its own client address.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startGateway, logIn, createUser } = require('./stack.js');

const MAX_ACCOUNT = 3;
const MAX_ADDR = 6;
const WINDOW_S = 120;
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
