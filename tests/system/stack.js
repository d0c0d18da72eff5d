'use strict';
// A private EasyJournal stack for one test file: deploy/local/stack.sh with a temporary EJ_VAR
// and free ports, stopped (and its directory removed) when the tests end, even when they fail.
//
//   const { startStack } = require('../system/stack.js');
//   const stack = await startStack({ env: { EJ_SITE_NAME: 'x' } });
//   await stack.fetch('/api/me');  ...  stack.stop();

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const STACK_SH = path.join(ROOT, 'deploy', 'local', 'stack.sh');
const live = new Set();

function stackCmd(stack, args, extraEnv = {}) {
  const r = spawnSync(STACK_SH, args, {
    cwd: ROOT,
    env: { ...process.env, ...stack.env, ...extraEnv },
    encoding: 'utf8',
    timeout: 120000,
  });
  if (r.status !== 0) {
    throw new Error(`stack.sh ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

function parseEnv(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return out;
}

class Stack {
  constructor(env) {
    this.env = env; // what every stack.sh call of this stack gets
    this.dir = env.EJ_VAR;
    this.info = {};
  }

  get url() {
    return `http://127.0.0.1:${this.info.EJ_HTTP_PORT}`;
  }

  get natsUrl() {
    return `nats://127.0.0.1:${this.info.EJ_NATS_PORT}`;
  }

  get natsMonUrl() {
    return `http://127.0.0.1:${this.info.EJ_NATS_MON_PORT}`;
  }

  // libpq conninfo of the stack's database.
  get dbUrl() {
    const pass = fs.readFileSync(path.join(this.dir, 'pg.pass'), 'utf8').trim();
    return `host=127.0.0.1 port=${this.info.EJ_PG_PORT} dbname=easyjournal user=postgres password=${pass}`;
  }

  // Runs one SQL query with psql; returns the rows as arrays of strings.
  sql(query) {
    const out = execFileSync('psql', [this.dbUrl, '-XAtq', '-F', '\t', '-c', query], {
      encoding: 'utf8',
      timeout: 20000,
    });
    return out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  }

  // fetch relative to the gateway; `redirect: manual` so tests see what the server said.
  fetch(p, init = {}) {
    return fetch(this.url + p, { redirect: 'manual', ...init });
  }

  // The pid of a stack process (gateway, nats, postgres, users, ...), or 0.
  pid(name) {
    try {
      return Number(fs.readFileSync(path.join(this.dir, 'pids', `${name}.pid`), 'utf8').trim());
    } catch {
      return 0;
    }
  }

  // Sends `signal` to a stack process and waits until it is gone.
  async kill(name, signal = 'SIGKILL') {
    const pid = this.pid(name);
    if (!pid) throw new Error(`${name} is not running`);
    process.kill(pid, signal);
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name} (pid ${pid}) did not exit after ${signal}`);
  }

  // (Re)starts one process with the stack's settings plus `extraEnv`; waits until it is ready.
  startOne(name, extraEnv = {}) {
    stackCmd(this, ['start-one', name], extraEnv);
  }

  log(name) {
    try {
      return fs.readFileSync(path.join(this.dir, 'log', `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  // Sanitizer reports in the stack's logs (a sanitizer build reports at exit, so read them
  // after stopping).
  sanitizerReports() {
    const found = [];
    let names = [];
    try {
      names = fs.readdirSync(path.join(this.dir, 'log'));
    } catch {
      return found;
    }
    for (const n of names) {
      const text = this.log(n.replace(/\.log$/, ''));
      const m = /(ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:)[^\n]*/.exec(text);
      if (m) found.push(`${n}: ${m[0]}`);
    }
    return found;
  }

  // Stops every process of the stack and removes its directory; throws when a process's log
  // holds a sanitizer report.
  stop() {
    if (!live.has(this)) return;
    live.delete(this);
    let reports = [];
    try {
      stackCmd(this, ['stop']);
      reports = this.sanitizerReports();
    } finally {
      if (!process.env.EJ_KEEP_VAR) fs.rmSync(this.dir, { recursive: true, force: true });
    }
    if (reports.length) throw new Error(`sanitizer reports:\n${reports.join('\n')}`);
  }
}

// Starts a full stack (what = 'start') or PostgreSQL + NATS only (what = 'infra').
function startStack({ env = {}, what = 'start' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-stack-'));
  const stack = new Stack({
    EJ_VAR: dir,
    EJ_HTTP_PORT: '0',
    EJ_PG_PORT: '0',
    EJ_NATS_PORT: '0',
    EJ_NATS_MON_PORT: '0',
    EJ_ADMIN_PORT: '0',
    BUILD: process.env.BUILD || 'build',
    ...env,
  });
  live.add(stack);
  try {
    stackCmd(stack, [what]);
  } catch (e) {
    stack.stop();
    throw e;
  }
  stack.info = parseEnv(fs.readFileSync(path.join(dir, 'stack.env'), 'utf8'));
  return stack;
}

// Whatever ends the process (a failed assertion, an exception, a signal), no stack outlives it.
function stopAll() {
  for (const s of [...live]) {
    try {
      s.stop();
    } catch (e) {
      process.stderr.write(`stopping the stack in ${s.dir}: ${e.message}\n`);
    }
  }
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopAll();
    process.exit(128 + os.constants.signals[sig]);
  });
}

// Registers and signs in a fresh user; returns { user, cookie, email, password }.
async function signUp(stack, overrides = {}) {
  const n = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const body = {
    name: 'Ada Lovelace',
    email: `ada.${n}@example.org`,
    password: 'correct horse battery staple',
    ...overrides,
  };
  const reg = await stack.fetch('/api/auth/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
  const login = await stack.fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: body.email, password: body.password }),
  });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${await login.text()}`);
  const setCookie = login.headers.get('set-cookie') || '';
  const cookie = setCookie.split(';')[0];
  const { user } = await login.json();
  return { user, cookie, email: body.email, password: body.password, setCookie };
}

module.exports = { startStack, signUp, ROOT };
