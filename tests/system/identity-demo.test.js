'use strict';
// Demo mode over HTTP: `stack.sh run` with EJ_DEMO=true (what `make run` does) seeds one
// account per role and prints their credentials in the terminal; they sign in with their
// roles, and no page or API answer the gateway serves shows a password. Without EJ_DEMO (the
// production default) there are no demo accounts.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startStack, apiFetch, ROOT } = require('./stack.js');

const STACK_SH = path.join(ROOT, 'deploy', 'local', 'stack.sh');
let dir;
let child;
let url;
let out = '';
const accounts = {}; // role -> { email, password }

function stopRun() {
  if (child && child.exitCode === null) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (dir) {
    // Whatever the run left behind (it stops itself on SIGTERM; this is the safety net).
    spawnSync(STACK_SH, ['stop'], { cwd: ROOT, env: { ...process.env, EJ_VAR: dir }, timeout: 60000 });
  }
}
process.on('exit', () => {
  stopRun();
  if (dir && !process.env.EJ_KEEP_VAR) fs.rmSync(dir, { recursive: true, force: true });
});

// A port nobody listens on now (make run names its ports; so does this test).
function freePort() {
  const net = require('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(String(p)));
    });
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-stack-'));
  // Admin ports are consecutive from EJ_ADMIN_PORT: take a free one with room after it.
  let admin = Number(await freePort());
  if (admin > 65000) admin = 30000 + (admin % 1000);
  child = spawn(STACK_SH, ['run'], {
    cwd: ROOT,
    env: {
      ...process.env,
      EJ_VAR: dir,
      EJ_HTTP_PORT: await freePort(),
      EJ_PG_PORT: await freePort(),
      EJ_NATS_PORT: await freePort(),
      EJ_NATS_MON_PORT: await freePort(),
      EJ_SMTP_PORT: await freePort(),
      EJ_ADMIN_PORT: String(admin),
      EJ_DEMO: 'true',
      BUILD: process.env.BUILD || 'build',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 90000;
  while (!/EasyJournal is running at (http:\/\/\S+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`stack.sh run did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  url = /EasyJournal is running at (http:\/\/\S+)/.exec(out)[1];
  // The credentials come just before that line; give the terminal a moment to flush.
  await new Promise((r) => setTimeout(r, 200));
  for (const m of out.matchAll(/^\s+(admin|editor|reviewer|author)\s+(\S+@\S+)\s+(\S+)\s*$/gm)) {
    accounts[m[1]] = { email: m[2], password: m[3] };
  }
});

after(() => {
  stopRun();
});

const login = (base, email, password) =>
  apiFetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });

test('the terminal shows one demo account per role, and each signs in with exactly that role', async () => {
  assert.deepEqual(Object.keys(accounts).sort(), ['admin', 'author', 'editor', 'reviewer'], out);
  for (const [role, a] of Object.entries(accounts)) {
    const res = await login(url, a.email, a.password);
    const text = await res.text();
    assert.equal(res.status, 200, `${role}: ${text}`);
    const cookie = (res.headers.get('set-cookie') || '').split(';')[0];
    const me = await (await apiFetch(`${url}/api/me`, { headers: { cookie } })).json();
    assert.deepEqual(me.user.roles, [role]);
    assert.equal(me.user.verified, true);
  }
});

test('no page or API answer shows a demo password', async () => {
  const admin = accounts.admin;
  const res = await login(url, admin.email, admin.password);
  const cookie = (res.headers.get('set-cookie') || '').split(';')[0];
  await res.arrayBuffer();
  const pages = ['/', '/index.html', '/app.js', '/login', '/api/site', '/api/privacy', '/api/consent'];
  const adminApi = ['/api/admin/users?limit=200', '/api/admin/activity?limit=200', '/api/admin/dev-mail'];
  for (const p of [...pages, ...adminApi]) {
    const r = await apiFetch(url + p, { headers: adminApi.includes(p) ? { cookie } : {} });
    const body = await r.text();
    for (const a of Object.values(accounts)) assert.ok(!body.includes(a.password), `${p} shows a demo password`);
  }
});

test('the credentials file is readable by its owner only', () => {
  const st = fs.statSync(path.join(dir, 'demo-credentials.txt'));
  assert.equal(st.mode & 0o077, 0, `mode ${(st.mode & 0o777).toString(8)}`);
});

test('without EJ_DEMO there are no demo accounts', async () => {
  const plain = startStack();
  try {
    for (const a of Object.values(accounts)) {
      const res = await login(plain.url, a.email, a.password);
      assert.equal(res.status, 401, a.email);
      await res.arrayBuffer();
    }
  } finally {
    plain.stop();
  }
});
