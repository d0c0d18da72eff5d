'use strict';
// Fault tests: kill parts of a private stack and check that the system degrades and recovers
// as promised. Each group has its own stack, so a fault never leaks into another test.
//
//   (a) the users service dies: the gateway answers 503 JSON fast and its /readyz turns 503 (no
//       replica of users answers); a restarted service is used again without restarting the
//       gateway.
//   (a2) the users service hangs: 504 outcome_unknown at the gateway's deadline, then normal
//        answers again.
//   (b) nats-server dies: /readyz says 503; it comes back by itself when nats-server returns.
//   (c) no event is lost: nats-server is killed after registrations commit but before the
//       outbox relay publishes them; after a restart every event is in JetStream exactly once.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { startStack, signUp, ROOT } = require('../system/stack.js');
const { until, sleep } = require('../system/expect.js');

const BUILD = process.env.BUILD || 'build';

const json = (body, headers = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

let seq = 0;
const freshEmail = () => `fault.${process.pid}.${Date.now()}.${++seq}@example.org`;

async function status(stack, p, init) {
  const res = await stack.fetch(p, init);
  await res.arrayBuffer();
  return res.status;
}

async function expectUnavailable(res, started) {
  const elapsed = Date.now() - started;
  const text = await res.text();
  assert.equal(res.status, 503, `status (body: ${text})`);
  assert.ok(elapsed < 5000, `answered in ${elapsed} ms, not within 5 s`);
  const body = JSON.parse(text);
  assert.equal(body.error.code, 'unavailable', text);
  assert.ok(body.error.requestId, 'requestId');
}

describe('(a) the users service is killed', { timeout: 90000 }, () => {
  let stack;
  before(() => {
    stack = startStack({ env: { EJ_SITE_NAME: 'Fault A' } });
  });
  after(() => stack && stack.stop());

  test('503 JSON within the deadline, then recovery without a gateway restart', async () => {
    const alice = await signUp(stack);
    const gatewayPid = stack.pid('gateway');

    await stack.kill('users', 'SIGKILL');

    let t = Date.now();
    await expectUnavailable(
      await stack.fetch('/api/auth/register', json({ name: 'B', email: freshEmail(), password: 'long enough pw' })),
      t,
    );
    t = Date.now();
    await expectUnavailable(await stack.fetch('/api/me', { headers: { cookie: alice.cookie } }), t);
    t = Date.now();
    await expectUnavailable(
      await stack.fetch('/api/auth/login', json({ email: alice.email, password: alice.password })),
      t,
    );
    // The gateway itself stays alive, but is not ready: no replica of users answers its ping.
    assert.equal(await status(stack, '/healthz'), 200);
    const unready = await until(5000, async () => (await status(stack, '/readyz')) === 503);
    assert.ok(unready, '/readyz 503 while no replica of a service answers');

    stack.startOne('users');
    assert.ok(await until(10000, async () => (await status(stack, '/readyz')) === 200), '/readyz 200 again');

    const me = await until(10000, async () => (await status(stack, '/api/me', { headers: { cookie: alice.cookie } })) === 200);
    assert.ok(me, 'GET /api/me works again after the restart');
    const bob = await signUp(stack);
    assert.ok(bob.user.id, 'register and login work again');
    assert.equal(stack.pid('gateway'), gatewayPid, 'the gateway was not restarted');
    process.kill(gatewayPid, 0);
  });
});

describe('(a2) the users service stops answering', { timeout: 90000 }, () => {
  // A frozen process (SIGSTOP) keeps its NATS subscription, so requests reach it and stay
  // unanswered: the gateway must give up at its deadline with 504, not hang.
  const TIMEOUT_MS = 1500;
  let stack;
  let frozen = 0;
  before(() => {
    stack = startStack({ env: { EJ_SITE_NAME: 'Fault A2', EJ_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) } });
  });
  after(() => {
    if (frozen) process.kill(frozen, 'SIGCONT');
    if (stack) stack.stop();
  });

  test('504 JSON at the deadline, then normal answers once it resumes', async () => {
    const alice = await signUp(stack);
    frozen = stack.pid('users');
    process.kill(frozen, 'SIGSTOP');

    const t = Date.now();
    const res = await stack.fetch('/api/auth/register', json({ name: 'C', email: freshEmail(), password: 'long enough pw' }));
    const elapsed = Date.now() - t;
    const text = await res.text();
    assert.equal(res.status, 504, text);
    assert.equal(JSON.parse(text).error.code, 'outcome_unknown', text);
    assert.ok(elapsed >= TIMEOUT_MS - 100, `gave up after ${elapsed} ms, before the deadline`);
    assert.ok(elapsed < TIMEOUT_MS + 2000, `gave up after ${elapsed} ms, long after the deadline`);

    process.kill(frozen, 'SIGCONT');
    frozen = 0;
    const me = await until(10000, async () => (await status(stack, '/api/me', { headers: { cookie: alice.cookie } })) === 200);
    assert.ok(me, 'answers again after SIGCONT');
  });
});

describe('(b) nats-server is killed', { timeout: 90000 }, () => {
  let stack;
  before(() => {
    stack = startStack({ env: { EJ_SITE_NAME: 'Fault B' } });
  });
  after(() => stack && stack.stop());

  test('/readyz goes 503 and comes back by itself when nats-server returns', async () => {
    const alice = await signUp(stack);
    const gatewayPid = stack.pid('gateway');
    assert.equal(await status(stack, '/readyz'), 200);

    await stack.kill('nats', 'SIGKILL');

    const down = await until(5000, async () => (await status(stack, '/readyz')) === 503);
    assert.ok(down, '/readyz answers 503 while NATS is down');
    assert.equal(await status(stack, '/healthz'), 200, '/healthz still 200: the process is alive');
    const t = Date.now();
    const res = await stack.fetch('/api/me', { headers: { cookie: alice.cookie } });
    const elapsed = Date.now() - t;
    const text = await res.text();
    assert.ok(res.status === 503 || res.status === 504, `API call while NATS is down: ${res.status} ${text}`);
    assert.ok(elapsed < 6000, `answered in ${elapsed} ms`);
    assert.ok(JSON.parse(text).error.code, text);

    stack.startOne('nats');

    const t0 = Date.now();
    const up = await until(15000, async () => (await status(stack, '/readyz')) === 200);
    assert.ok(up, '/readyz back to 200 by itself');
    assert.ok(Date.now() - t0 < 15000);

    const me = await until(15000, async () => (await status(stack, '/api/me', { headers: { cookie: alice.cookie } })) === 200);
    assert.ok(me, 'API calls work again (gateway and service reconnected)');
    const bob = await signUp(stack);
    assert.ok(bob.user.id);
    assert.equal(stack.pid('gateway'), gatewayPid, 'the gateway was not restarted');
  });
});

describe('(c) no event is lost when nats-server dies between commit and publish', { timeout: 120000 }, () => {
  // The relay publishes only outbox rows older than HOLD_MS, which leaves time to kill
  // nats-server after the registrations commit and before their events are published.
  const HOLD_MS = process.env.SANITIZE ? 8000 : 3000;
  const N = 20;
  let stack;
  before(() => {
    stack = startStack({
      env: { EJ_SITE_NAME: 'Fault C', EJ_RELAY_HOLD_MS: String(HOLD_MS), EJ_RELAY_POLL_MS: '200' },
    });
  });
  after(() => stack && stack.stop());

  function dump() {
    const out = execFileSync(path.resolve(ROOT, BUILD, 'bin', 'events-dump'), [stack.natsUrl, 'EJ_EVENTS'], {
      encoding: 'utf8',
      timeout: 10000,
    });
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [seqNo, id, subject, type] = l.split(' ');
        return { seq: seqNo, id, subject, type };
      });
  }
  const registered = () => dump().filter((e) => e.type === 'user.registered');

  test(`all ${N} user.registered events reach JetStream exactly once`, async () => {
    const before0 = registered().length;
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        stack.fetch('/api/auth/register', json({ name: `Event ${i}`, email: freshEmail(), password: 'long enough pw' })),
      ),
    );
    for (const r of results) {
      assert.equal(r.status, 202, await r.text());
      await r.arrayBuffer().catch(() => {});
    }
    const committedIn = Date.now() - t0;
    // Nothing may have been published yet, or the test would not test what it says.
    const early = registered().length - before0;
    assert.equal(early, 0, `${early} events were published before nats-server was killed (registrations took ${committedIn} ms, hold ${HOLD_MS} ms)`);

    await stack.kill('nats', 'SIGKILL');
    await sleep(HOLD_MS + 1000); // the rows are now due, and NATS is away
    stack.startOne('nats');

    const all = await until(30000, () => registered().length - before0 >= N && registered(), 500);
    const events = registered();
    assert.ok(all, `only ${events.length - before0} of ${N} events arrived`);
    await sleep(2 * HOLD_MS); // give a duplicate publish time to show up
    const final = registered();
    assert.equal(final.length - before0, N, `exactly ${N} events, got ${final.length - before0}`);
    const ids = new Set(final.map((e) => e.id));
    assert.equal(ids.size, final.length, 'every Nats-Msg-Id once');
    for (const e of final) {
      assert.match(e.id, /^[0-9a-f-]{36}$/, `event id ${e.id}`);
      assert.match(e.subject, /^ej\.evt\.users\./, `subject ${e.subject}`);
    }
    // The very events the database committed, and the outbox knows they are published.
    const rows = stack.sql("SELECT id::text, published_at IS NOT NULL FROM users.outbox WHERE type = 'user.registered'");
    assert.equal(rows.length, N, `${rows.length} outbox rows`);
    assert.deepEqual(new Set(rows.map((r) => r[0])), ids, 'outbox ids = stream ids');
    const published = await until(10000, () => stack.sql("SELECT count(*) FROM users.outbox WHERE published_at IS NULL")[0][0] === '0');
    assert.ok(published, 'every outbox row is marked published');
  });
});
