'use strict';
// A private EasyJournal stack for one test file: deploy/local/stack.sh with a temporary EJ_VAR
// and free ports, stopped (and its directory removed) when the tests end, even when they fail.
//
//   const { startStack } = require('../system/stack.js');
//   const stack = await startStack({ env: { EJ_SITE_NAME: 'x' } });
//   await stack.fetch('/api/me');  ...  stack.stop();
//
// Every answer fetched through stack.fetch, a replica's fetch or apiFetch is checked against the
// gateway's own description (GET /api/openapi.json, see openapi-check.js): an undocumented
// status or a body that does not match its schema fails the test.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const STACK_SH = path.join(ROOT, 'deploy', 'local', 'stack.sh');
const live = new Set();

// fetch, then the answer checked against the gateway's OpenAPI document (throws on a mismatch).
async function apiFetch(url, init = {}) {
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    // undici says only "fetch failed"; the cause says what the network did.
    if (e.cause) e.message += ` (${init.method || 'GET'} ${url}: ${e.cause.code || ''} ${e.cause.message || e.cause})`;
    throw e;
  }
  await require('./openapi-check.js').checkAnswer(url, init, res);
  return res;
}

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

  // The gateway's admin listener (/metrics, /healthz, /readyz), loopback only.
  get adminUrl() {
    return `http://127.0.0.1:${this.info.EJ_GATEWAY_ADMIN_PORT}`;
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
    return apiFetch(this.url + p, { redirect: 'manual', ...init });
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
    // Every test client comes from 127.0.0.1: the per-address mail limit would cap a whole
    // file's registrations. Tests of that limit set it themselves.
    EJ_MAIL_MAX_PER_ADDR: '100000',
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
  if (reg.status !== 202) throw new Error(`register: ${reg.status} ${await reg.text()}`);
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

// Another gateway replica on the same NATS (a second "pod"): its own free port, the stack's
// settings plus `extraEnv`; stopped with the stack (or earlier with its stop()). Resolves once
// /readyz answers 200. Returns { url, pid, fetch(path, init), stop() }.
async function startGateway(stack, extraEnv = {}) {
  const { spawn } = require('node:child_process');
  const net = require('node:net');
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const build = path.isAbsolute(stack.env.BUILD) ? stack.env.BUILD : path.join(ROOT, stack.env.BUILD);
  const logFile = path.join(stack.dir, 'log', `gateway-${port}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(path.join(build, 'bin', 'ej-gateway'), [], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...stack.env,
      ...extraEnv,
      EJ_HTTP_ADDR: `127.0.0.1:${port}`,
      EJ_NATS_URL: stack.natsUrl,
      EJ_WEB_ROOT: path.join(ROOT, 'gateway', 'web'),
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const gw = {
    url,
    pid: child.pid,
    fetch: (p, init = {}) => apiFetch(url + p, { redirect: 'manual', ...init }),
    stop() {
      if (!exited) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      exited = true;
    },
  };
  // stack.stop() does not know this process: stop it first.
  const stop = stack.stop.bind(stack);
  stack.stop = () => {
    gw.stop();
    return stop();
  };
  for (let i = 0; i < 200; i++) {
    if (exited) break;
    try {
      const r = await fetch(`${url}/readyz`);
      await r.arrayBuffer();
      if (r.status === 200) return gw;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  gw.stop();
  throw new Error(`extra gateway on ${url} did not become ready:\n${fs.readFileSync(logFile, 'utf8')}`);
}

// Runs the users service's command-line tool (build/bin/ej-users ARGS) against the stack's
// database and NATS, `input` on its standard input; returns its standard output. Throws with
// its stderr when it exits non-zero.
function usersCli(stack, args, input = '') {
  const build = path.isAbsolute(stack.env.BUILD) ? stack.env.BUILD : path.join(ROOT, stack.env.BUILD);
  const r = spawnSync(path.join(build, 'bin', 'ej-users'), args, {
    cwd: ROOT,
    env: { ...process.env, ...stack.env, EJ_DB_URL: stack.dbUrl, EJ_NATS_URL: stack.natsUrl, EJ_LOG_LEVEL: 'warn' },
    input,
    encoding: 'utf8',
    timeout: 60000,
  });
  if (r.status !== 0) {
    throw new Error(`ej-users ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

// Signs in `email` / `password`; returns { user, cookie, setCookie } (cookie = "name=token").
async function logIn(stack, email, password, extra = {}) {
  const res = await stack.fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, ...extra }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${text}`);
  const setCookie = res.headers.get('set-cookie') || '';
  return { user: JSON.parse(text).user, cookie: setCookie.split(';')[0], setCookie };
}

// Creates an account with the CLI (build/bin/ej-users create-user, the password on stdin) and
// signs it in. `roles` is a list (e.g. ['admin']). Returns what logIn returns plus email and
// password.
async function createUser(stack, { roles = ['author'], name = 'Test Person', email, password } = {}) {
  const n = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  email = email || `${roles.join('-') || 'none'}.${n}@example.org`;
  password = password || `pw ${n} long enough`;
  const args = ['create-user', '--email', email, '--name', name, '--roles', roles.join(','), '--password-stdin'];
  usersCli(stack, args, `${password}\n`);
  const session = await logIn(stack, email, password);
  return { ...session, email, password };
}

// The mails the dev SMTP catcher holds (GET /api/admin/dev-mail as the admin `cookie`, only
// those to `to` when given), oldest first, each normalised to { id, to, subject, text, raw }.
async function devMails(stack, cookie, to = '') {
  const q = to ? `?to=${encodeURIComponent(to)}&limit=500` : '?limit=500';
  const res = await stack.fetch(`/api/admin/dev-mail${q}`, { headers: { cookie } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/admin/dev-mail: ${res.status} ${text}`);
  const body = JSON.parse(text);
  const list = Array.isArray(body) ? body : body.mails || body.messages || body.items || [];
  return list
    .map((m) => {
      const rcpt = [m.to, m.recipients, m.rcpt, m.recipient].flat().filter(Boolean).join(',');
      const raw = m.raw || m.data || '';
      const txt = m.text || m.body || m.bodyText || raw;
      return { id: Number(m.id) || 0, to: rcpt, subject: m.subject || '', text: String(txt), raw: String(raw), mail: m };
    })
    .sort((a, b) => a.id - b.id);
}

// Waits (up to `timeoutMs`) for a caught mail to `to` whose subject or text matches `match`
// and that was not among `seen` (a count of such mails already read); returns it.
async function waitForMail(stack, cookie, to, { match = /./, after = 0, timeoutMs = 15000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = [];
  for (;;) {
    const all = await devMails(stack, cookie, to);
    last = all.filter((m) => m.to.toLowerCase().includes(to.toLowerCase()));
    const hits = last.filter((m) => match.test(m.subject) || match.test(m.text));
    if (hits.length > after) return hits[hits.length - 1];
    if (Date.now() > deadline) {
      throw new Error(`no mail to ${to} matching ${match} (have ${last.length}: ${last.map((m) => m.subject).join(' | ')})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The first link in a mail's text that holds `token=` (or the first http(s) link), decoded from
// quoted-printable soft breaks; and its token parameter.
function mailLink(mail) {
  const text = mail.text.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const links = text.match(/https?:\/\/[^\s"<>]+/g) || [];
  const link = links.find((l) => /token=/.test(l)) || links[0];
  if (!link) throw new Error(`no link in mail: ${text}`);
  const u = new URL(link);
  const fromHash = /token=([^&]+)/.exec(u.hash);
  const token = u.searchParams.get('token') || (fromHash && decodeURIComponent(fromHash[1])) || u.pathname.split('/').pop();
  return { link, token, url: u };
}

module.exports = {
  startStack,
  apiFetch,
  signUp,
  ROOT,
  startGateway,
  usersCli,
  logIn,
  createUser,
  devMails,
  waitForMail,
  mailLink,
};

// startGateway chooses its port with listen(0) and closes it before the gateway binds it, so
// another process may take the port in between (stacks start in parallel). The gateway then
// exits saying it cannot listen: only that failure is retried, on a new port; any other failure
// is thrown at once with the gateway's log.
const startGatewayOnce = startGateway;
module.exports.startGateway = async function startGatewayRetrying(stack, extraEnv = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(stack, extraEnv);
    } catch (e) {
      if (attempt >= 3 || !/cannot listen on/.test(e.message)) throw e;
    }
  }
};
