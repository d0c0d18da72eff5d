'use strict';
// Fault tests of honest answers, readiness and interrupted uploads (issue findings 12-14). Each
// group has its own stack and stays well under a minute.
//
//   (d) nats-server is SIGKILLed during writes at 20 req/s: no client is told 503 unavailable
//       ("not delivered") for a registration the database holds, and every outcome_unknown is
//       settled by a retry with the same Idempotency-Key (one account, the first answer).
//   (e) PostgreSQL stops for a few seconds: every service's /readyz turns 503 and recovers.
//   (f) the files replica taking a 100 MiB upload is SIGKILLed midway (multi-replica topology,
//       deploy/replicas/run.sh): the client is answered within 2 s of the kill, and a surviving
//       replica's sweeper reclaims the dead replica's .part file.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startStack, signUp, ROOT } = require('../system/stack.js');
const { until, sleep } = require('../system/expect.js');

let seq = 0;
const freshEmail = () => `rel.${process.pid}.${Date.now()}.${++seq}@example.org`;

async function statusOf(url) {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

// A registration as a client that keeps its Idempotency-Key for retries; never throws.
async function register(stack, email, key) {
  try {
    const res = await stack.fetch('/api/auth/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ name: 'Reliable', email, password: 'long enough pw' }),
    });
    const text = await res.text();
    let code = '';
    try {
      code = JSON.parse(text).error?.code || '';
    } catch {}
    return { status: res.status, code, text };
  } catch (e) {
    return { status: 0, code: 'network', text: String(e) };
  }
}

describe('(d) nats-server is killed during writes at 20 req/s', { timeout: 90000 }, () => {
  let stack;
  before(() => {
    stack = startStack({ env: { EJ_SITE_NAME: 'Fault D', EJ_REQUEST_TIMEOUT_MS: '3000' } });
  });
  after(() => stack && stack.stop());

  test('no 503 unavailable for a committed write; outcome_unknown settled by the same key', async () => {
    await signUp(stack); // warm: the stack answers writes
    const calls = [];
    const started = Date.now();
    let killedAt = 0;
    // 20 requests a second for 3 s; nats-server dies after 1.2 s and returns after 2.6 s.
    for (let i = 0; i < 60; i++) {
      const email = freshEmail();
      const key = crypto.randomUUID();
      calls.push(register(stack, email, key).then((r) => ({ ...r, email, key })));
      if (!killedAt && Date.now() - started >= 1200) {
        killedAt = Date.now();
        await stack.kill('nats', 'SIGKILL');
      }
      await sleep(50);
    }
    const results = await Promise.all(calls);
    stack.startOne('nats');
    assert.ok(await until(20000, async () => (await statusOf(`${stack.url}/readyz`)) === 200), 'ready again');
    // Anything a reconnecting client still held has had time to arrive.
    await sleep(1500);

    const counts = {};
    for (const r of results) counts[`${r.status} ${r.code}`] = (counts[`${r.status} ${r.code}`] || 0) + 1;
    const accounts = (email) => Number(stack.sql(`SELECT count(*) FROM users.users WHERE email = '${email}'`)[0][0]);
    let unknown = 0;
    for (const r of results) {
      assert.ok([202, 503, 504].includes(r.status), `unexpected answer ${r.status} ${r.text}`);
      if (r.status === 202) assert.equal(accounts(r.email), 1, `202 but no account for ${r.email}`);
      if (r.status === 503) {
        assert.equal(r.code, 'unavailable', r.text);
        assert.equal(accounts(r.email), 0, `told 503 unavailable, yet ${r.email} was stored: ${r.text}`);
      }
      if (r.status === 504) {
        unknown++;
        assert.equal(r.code, 'outcome_unknown', r.text);
        // The retry the answer asks for: the same key gets the first answer, or does it now.
        const again = await until(10000, async () => {
          const a = await register(stack, r.email, r.key);
          return a.status === 202 && a;
        }, 300);
        assert.ok(again, `retry of ${r.email} with its key never answered 202`);
        assert.equal(accounts(r.email), 1, `exactly one account for ${r.email} after the retry`);
      }
    }
    assert.ok(counts['503 unavailable'] > 0, `the outage was seen: ${JSON.stringify(counts)}`);
    process.stderr.write(`(d) answers: ${JSON.stringify(counts)}, ${unknown} settled by a retry\n`);
  });
});

describe('(e) PostgreSQL stops for a few seconds', { timeout: 90000 }, () => {
  let stack;
  before(() => {
    stack = startStack({ env: { EJ_SITE_NAME: 'Fault E' } });
  });
  after(() => stack && stack.stop());

  test("every service's /readyz turns 503 and recovers; /healthz stays 200", async () => {
    // Admin ports: EJ_ADMIN_PORT + i, one per service (deploy/local/stack.sh).
    const base = Number(stack.info.EJ_ADMIN_PORT);
    const services = fs.readdirSync(path.join(ROOT, 'services')).filter((s) => s !== 'common' && fs.existsSync(path.join(ROOT, 'services', s, 'main.c'))).sort();
    const admin = services.map((_, i) => `http://127.0.0.1:${base + i}`);
    for (const a of admin) assert.equal(await statusOf(`${a}/readyz`), 200, `${a} ready before`);

    await stack.kill('postgres', 'SIGINT'); // fast shutdown: clients are disconnected
    for (const a of admin) {
      assert.ok(await until(4000, async () => (await statusOf(`${a}/readyz`)) === 503), `${a}/readyz 503 while PostgreSQL is down`);
      assert.equal(await statusOf(`${a}/healthz`), 200, `${a}/healthz: alive`);
    }
    await sleep(2000);
    stack.startOne('postgres');
    for (const a of admin) {
      assert.ok(await until(10000, async () => (await statusOf(`${a}/readyz`)) === 200), `${a}/readyz back to 200`);
    }
    const u = await signUp(stack);
    assert.ok(u.user.id, 'writes work again');
  });
});

// ---- (f): the multi-replica topology -------------------------------------------------------

const RUN = path.join(ROOT, 'deploy', 'replicas', 'run.sh');
const topologies = new Set();
function stopTopology(dir) {
  if (!topologies.delete(dir)) return;
  spawnSync(RUN, ['stop'], { cwd: ROOT, env: { ...process.env, EJ_VAR: dir }, timeout: 60000 });
  if (!process.env.EJ_KEEP_VAR) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', () => [...topologies].forEach(stopTopology));

describe('(f) a files replica dies in the middle of a 100 MiB upload', { timeout: 120000 }, () => {
  let dir;
  let url;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-stack-replicas-'));
    fs.chmodSync(dir, 0o711);
    topologies.add(dir);
    const r = spawnSync(RUN, ['start'], {
      cwd: ROOT,
      env: {
        ...process.env,
        EJ_VAR: dir,
        EJ_REPLICAS: '2',
        EJ_GATEWAYS: '1',
        EJ_FILES_LIMIT_MANUSCRIPT: String(200 << 20),
        EJ_FILES_SWEEP_INTERVAL_S: '1',
        EJ_FILES_TMP_GRACE_S: '1',
        EJ_LOG_LEVEL: 'info',
      },
      encoding: 'utf8',
      timeout: 100000,
    });
    assert.equal(r.status, 0, `run.sh start: ${r.stderr}${r.stdout}`);
    url = `http://127.0.0.1:${fs.readFileSync(path.join(dir, 'gateway-ports'), 'utf8').trim().split(/\s+/)[0]}`;
  });
  after(() => dir && stopTopology(dir));

  // The replica id of files-N, from its start-up line.
  function replicaIds() {
    const ids = {};
    for (const n of [1, 2]) {
      const m = /replica ([a-z0-9-]+),/.exec(fs.readFileSync(path.join(dir, 'log', `files-${n}.log`), 'utf8'));
      if (m) ids[m[1]] = n;
    }
    return ids;
  }
  // The .part files under the shared file store: [{ replica, file, size }].
  function parts() {
    const out = [];
    const tmp = path.join(dir, 'files', 'tmp');
    for (const d of fs.readdirSync(tmp, { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      for (const f of fs.readdirSync(path.join(tmp, d.name))) {
        if (!f.endsWith('.part')) continue;
        try {
          out.push({ replica: d.name, file: path.join(tmp, d.name, f), size: fs.statSync(path.join(tmp, d.name, f)).size });
        } catch {}
      }
    }
    return out;
  }

  test('answered within 2 s of the kill, and the .part file is reclaimed', async () => {
    const email = freshEmail();
    const reg = await fetch(`${url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Uploader', email, password: 'long enough pw' }),
    });
    assert.equal(reg.status, 202, await reg.text());
    const login = await fetch(`${url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'long enough pw' }),
    });
    assert.equal(login.status, 200);
    const cookie = (login.headers.get('set-cookie') || '').split(';')[0];
    const ids = replicaIds();
    assert.equal(Object.keys(ids).length, 2, `two files replicas: ${JSON.stringify(ids)}`);

    const TOTAL = 100 << 20;
    const piece = crypto.randomBytes(1 << 20);
    Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1').copy(piece);
    let answeredAt = 0;
    let answer = null;
    let sent = 0;
    let stop = false;
    const done = new Promise((resolve) => {
      const u = new URL(`${url}/api/files?kind=manuscript&name=big.pdf`);
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PUT', headers: { cookie, 'content-type': 'application/pdf', 'content-length': TOTAL } },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            answeredAt = answeredAt || Date.now();
            answer = { status: res.statusCode, body };
            stop = true;
            resolve();
          });
          res.on('error', () => resolve());
        },
      );
      req.on('error', (e) => {
        answeredAt = answeredAt || Date.now();
        answer = answer || { status: 0, body: String(e) };
        stop = true;
        resolve();
      });
      // About 40 MiB/s: the upload lasts a few seconds, so the kill lands in the middle.
      (async () => {
        while (!stop && sent < TOTAL) {
          const ok = req.write(piece);
          sent += piece.length;
          if (!ok) {
            await new Promise((r) => {
              const go = () => {
                req.off('drain', go);
                req.off('close', go);
                r();
              };
              req.on('drain', go);
              req.on('close', go);
            });
          }
          await sleep(25);
        }
        if (!stop) req.end();
      })();
    });

    // Kill the replica writing the .part file once it holds a quarter of the file.
    const victim = await until(30000, () => parts().find((p) => p.size >= 25 << 20), 20);
    assert.ok(victim, `no .part file grew (sent ${sent} bytes; answer ${JSON.stringify(answer)})`);
    const n = ids[victim.replica];
    assert.ok(n, `the .part file belongs to replica ${victim.replica}, which is neither files-1 nor files-2`);
    const pid = Number(fs.readFileSync(path.join(dir, 'replica-pids', `files-${n}.pid`), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    await Promise.race([done, sleep(10000)]);
    stop = true;
    assert.ok(answeredAt, 'the client got no answer within 10 s of the kill');
    const took = answeredAt - killedAt;
    assert.ok(took <= 2000, `answered ${took} ms after the kill (sent ${sent >> 20} MiB of 100)`);
    assert.ok(sent < TOTAL, 'answered before the whole body was sent');
    assert.equal(answer.status, 503, `answer: ${JSON.stringify(answer)}`);
    assert.equal(JSON.parse(answer.body).error.code, 'unavailable', answer.body);

    // The surviving replica's sweeper takes the dead replica's temp files.
    const gone = await until(10000, () => !fs.existsSync(victim.file) && !fs.existsSync(path.dirname(victim.file)), 200);
    assert.ok(gone, `${victim.file} was not reclaimed`);

    // And uploads go on through the surviving replica.
    const small = crypto.randomBytes(64 << 10);
    Buffer.from('%PDF-1.4\n', 'latin1').copy(small);
    const ok = await fetch(`${url}/api/files?kind=manuscript&name=small.pdf`, {
      method: 'PUT',
      headers: { cookie, 'content-type': 'application/pdf' },
      body: small,
    });
    assert.equal(ok.status, 201, await ok.text());
  });
});
