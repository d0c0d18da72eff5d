'use strict';
// System tests: the real gateway, users service, PostgreSQL and nats-server on loopback, driven
// over HTTP as a client would. One private stack for the file (deploy/local/stack.sh).

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startStack, startGateway, signUp, createUser, ROOT } = require('./stack.js');
const { expectError } = require('./expect.js');
const { Checker } = require('./openapi-check.js');

let stack;

before(() => {
  stack = startStack({ env: { EJ_SITE_NAME: 'Journal of System Tests' } });
});

after(() => {
  if (stack) stack.stop();
});

const json = (body, headers = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

let seq = 0;
const freshEmail = () => `user.${process.pid}.${Date.now()}.${++seq}@example.org`;

function assertSecurityHeaders(res) {
  const csp = res.headers.get('content-security-policy') || '';
  assert.match(csp, /default-src [^;]*'self'|default-src 'none'/, `CSP: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'|frame-ancestors 'self'/, `CSP frame-ancestors: ${csp}`);
  assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'/, `CSP allows inline/eval: ${csp}`);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(res.headers.get('referrer-policy'), 'Referrer-Policy');
}

describe('probes', () => {
  test('/healthz answers 200 while the process runs', async () => {
    const res = await stack.fetch('/healthz');
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  test('/readyz answers 200 when NATS is connected', async () => {
    const res = await stack.fetch('/readyz');
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  test('/metrics is not on the public port', async () => {
    const res = await stack.fetch('/metrics');
    const text = await res.text();
    assert.doesNotMatch(res.headers.get('content-type') || '', /^text\/plain/);
    assert.doesNotMatch(text, /http_requests_total/);
  });

  test('/metrics on the admin listener exposes request counters and a latency histogram', async () => {
    await (await stack.fetch('/healthz')).arrayBuffer();
    await (await stack.fetch('/api/me')).arrayBuffer(); // a 401 to count
    const res = await fetch(`${stack.adminUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# TYPE http_requests_total counter$/m);
    assert.match(text, /^http_requests_total\{[^}]*route="\/healthz"[^}]*code="200"[^}]*\} [0-9]/m);
    assert.match(text, /^http_requests_total\{[^}]*route="\/api\/me"[^}]*code="401"[^}]*\} [0-9]/m);
    assert.match(text, /^# TYPE http_request_duration_seconds histogram$/m);
    assert.match(text, /^http_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} [0-9]/m);
    assert.match(text, /^http_request_duration_seconds_count(\{[^}]*\})? [0-9]/m);
  });
});

describe('static files', () => {
  test('the start page is HTML with the security headers', async () => {
    const res = await stack.fetch('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/html; charset=utf-8/i);
    assertSecurityHeaders(res);
    assert.match(await res.text(), /<!doctype html>/i);
  });

  test('assets have their types', async () => {
    // Modules in subfolders too: a browser refuses a module served with another type.
    for (const p of ['/app.js', '/pages/account.js']) {
      const js = await stack.fetch(p);
      assert.equal(js.status, 200, p);
      assert.match(js.headers.get('content-type') || '', /^(text|application)\/javascript/, p);
      await js.arrayBuffer();
    }
    const css = await stack.fetch('/pages/admin.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') || '', /^text\/css/);
    await css.arrayBuffer();
  });

  test('ETag and If-None-Match give 304 without a body', async () => {
    const first = await stack.fetch('/');
    await first.arrayBuffer();
    const etag = first.headers.get('etag');
    assert.ok(etag, 'ETag');
    assert.ok(first.headers.get('cache-control'), 'Cache-Control');
    const again = await stack.fetch('/', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
    assert.equal(again.headers.get('etag'), etag);
  });

  test('a path outside the web root is not served', async () => {
    const res = await stack.fetch('/..%2f..%2fMakefile');
    assert.ok(res.status === 404 || res.status === 400, `status ${res.status}`);
    assert.doesNotMatch(await res.text(), /SANITIZE/);
  });
});

describe('accounts and sessions', () => {
  test('Idempotency-Key: a retried write gets the first answer; another body with the key is 409; a bad key 400', async () => {
    const key = `idem-${process.pid}-${Date.now()}`;
    const body = { name: 'Idem Potent', email: freshEmail(), password: 'correct horse battery staple' };
    const send = (b, k) => stack.fetch('/api/auth/register', json(b, { 'idempotency-key': k }));
    // Registering answers alike for a new and a taken address; a second run would show in the
    // outbox instead, as the taken address's owner being told of the attempt.
    const mailsTo = async (to) =>
      Number(stack.sql(`SELECT count(*) FROM users.mail_outbox WHERE to_addr = '${to}'`)[0][0]);
    const first = await send(body, key);
    const firstText = await first.text();
    assert.equal(first.status, 202, firstText);
    const again = await send(body, key);
    assert.equal(again.status, 202);
    assert.deepEqual(await again.json(), JSON.parse(firstText), 'the stored answer');
    assert.equal(await mailsTo(body.email), 1, 'one run: the verification mail and no other');
    const other = await send({ ...body, name: 'Someone Else' }, key);
    assert.equal(other.status, 409, await other.clone().text());
    assert.equal((await other.json()).error.field, 'Idempotency-Key');
    const bad = await send(body, 'has space');
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.field, 'Idempotency-Key');
  });

  test('register -> login -> me -> logout -> me is 401', async () => {
    const email = freshEmail();
    const password = 'correct horse battery staple';
    const reg = await stack.fetch('/api/auth/register', json({ name: 'Grace Hopper', email, password }));
    assert.equal(reg.status, 202, await reg.clone().text());
    assertSecurityHeaders(reg);
    // The answer names the address only: it must not tell a new one from a taken one.
    assert.deepEqual(await reg.json(), { email });
    const first = await stack.fetch('/api/auth/login', json({ email, password }));
    assert.equal(first.status, 200, await first.clone().text());
    const { user } = await first.json();
    assert.equal(user.name, 'Grace Hopper');
    assert.equal(user.email, email);
    assert.ok(user.id, 'user id');
    assert.equal(typeof user.createdAtMs, 'string', '64-bit integers are JSON strings');
    assert.ok(Math.abs(Number(user.createdAtMs) - Date.now()) < 10 * 60 * 1000, 'createdAtMs is now');
    assert.ok(Array.isArray(user.roles ?? []), 'roles is a list');
    assert.equal(user.password, undefined);
    assert.equal(user.passwordHash, undefined);

    const login = await stack.fetch('/api/auth/login', json({ email, password }));
    assert.equal(login.status, 200, await login.clone().text());
    const setCookie = login.headers.get('set-cookie') || '';
    assert.match(setCookie, /^ej_session=[^;]{20,}/);
    assert.match(setCookie, /;\s*HttpOnly/i);
    assert.match(setCookie, /;\s*SameSite=Lax/i);
    assert.match(setCookie, /;\s*Path=\//i);
    const token = /^ej_session=([^;]*)/.exec(setCookie)[1];
    const loginText = await login.text();
    assert.ok(!loginText.includes(token), 'the session token is not in the body');
    const loginBody = JSON.parse(loginText);
    assert.equal(loginBody.user.id, user.id);
    assert.equal(loginBody.sessionToken, undefined);
    assert.equal(typeof loginBody.expiresAtMs, 'string');
    assert.ok(Number(loginBody.expiresAtMs) > Date.now(), 'expires in the future');
    const cookie = `ej_session=${token}`;

    const me = await stack.fetch('/api/me', { headers: { cookie } });
    assert.equal(me.status, 200);
    const meBody = await me.json();
    assert.equal(meBody.user.id, user.id);
    assert.equal(meBody.user.email, email);

    const out = await stack.fetch('/api/auth/logout', json({}, { cookie }));
    assert.ok(out.status === 200 || out.status === 204, `logout status ${out.status}`);
    const cleared = out.headers.get('set-cookie') || '';
    assert.match(cleared, /^ej_session=;|Max-Age=0|expires=Thu, 01 Jan 1970/i, `cleared: ${cleared}`);
    await out.arrayBuffer();

    await expectError(await stack.fetch('/api/me', { headers: { cookie } }), 401, 'unauthenticated');
  });

  test('/api/me without a session is 401', async () => {
    await expectError(await stack.fetch('/api/me'), 401, 'unauthenticated');
    await expectError(
      await stack.fetch('/api/me', { headers: { cookie: 'ej_session=not-a-real-token' } }),
      401,
      'unauthenticated',
    );
  });

  test('two sessions are independent: logging out one keeps the other', async () => {
    const a = await signUp(stack);
    const login2 = await stack.fetch('/api/auth/login', json({ email: a.email, password: a.password }));
    assert.equal(login2.status, 200);
    const cookie2 = (login2.headers.get('set-cookie') || '').split(';')[0];
    await login2.arrayBuffer();
    assert.notEqual(cookie2, a.cookie);
    const out = await stack.fetch('/api/auth/logout', json({}, { cookie: a.cookie }));
    await out.arrayBuffer();
    const me2 = await stack.fetch('/api/me', { headers: { cookie: cookie2 } });
    assert.equal(me2.status, 200);
    await me2.arrayBuffer();
  });

  const bad = [
    ['missing name', { email: 'x@example.org', password: 'long enough pw' }, 'name'],
    ['name too long', { name: 'n'.repeat(1000), email: 'x@example.org', password: 'long enough pw' }, 'name'],
    ['missing e-mail', { name: 'X', password: 'long enough pw' }, 'email'],
    ['e-mail without @', { name: 'X', email: 'not-an-email', password: 'long enough pw' }, 'email'],
    ['e-mail too long', { name: 'X', email: `${'a'.repeat(300)}@example.org`, password: 'long enough pw' }, 'email'],
    ['missing password', { name: 'X', email: 'x@example.org' }, 'password'],
    ['short password', { name: 'X', email: 'x@example.org', password: 'short' }, 'password'],
  ];
  for (const [what, body, field] of bad) {
    test(`register rejects ${what}: 400 naming the field`, async () => {
      const e = await expectError(await stack.fetch('/api/auth/register', json(body)), 400, 'invalid_argument');
      assert.equal(e.field, field, JSON.stringify(e));
    });
  }

  test('register with an e-mail already taken answers as for a new one, whatever its case', async () => {
    const email = freshEmail();
    const body = { name: 'First', email, password: 'correct horse battery staple' };
    const first = await stack.fetch('/api/auth/register', json(body));
    assert.equal(first.status, 202);
    assert.deepEqual(await first.json(), { email });
    const again = await stack.fetch('/api/auth/register', json({ ...body, password: 'another password here' }));
    assert.equal(again.status, 202);
    assert.deepEqual(await again.json(), { email });
    const upper = await stack.fetch('/api/auth/register', json({ ...body, email: email.toUpperCase() }));
    assert.equal(upper.status, 202);
    assert.deepEqual(await upper.json(), { email: email.toUpperCase() });
    // Still one account, with the first password.
    const wrong = await stack.fetch('/api/auth/login', json({ email, password: 'another password here' }));
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();
    const right = await stack.fetch('/api/auth/login', json({ email, password: body.password }));
    assert.equal(right.status, 200);
    await right.arrayBuffer();
  });

  test('login with a wrong password or an unknown e-mail is 401, the same answer', async () => {
    const a = await signUp(stack);
    const wrong = await expectError(
      await stack.fetch('/api/auth/login', json({ email: a.email, password: 'wrong password!' })),
      401,
      'unauthenticated',
    );
    const unknown = await expectError(
      await stack.fetch('/api/auth/login', json({ email: freshEmail(), password: 'wrong password!' })),
      401,
      'unauthenticated',
    );
    assert.equal(wrong.message, unknown.message, 'no hint whether the account exists');
    const res = await stack.fetch('/api/auth/login', json({ email: a.email, password: 'wrong password!' }));
    assert.equal(res.headers.get('set-cookie'), null, 'no cookie on failure');
    await res.arrayBuffer();
  });
});

describe('errors', () => {
  test('unknown route: 404 with the error shape', async () => {
    const e = await expectError(await stack.fetch('/api/no-such-thing'), 404, 'not_found');
    assert.ok(e.message);
  });

  test('wrong method: 405 with Allow', async () => {
    const res = await stack.fetch('/api/auth/register', { method: 'GET' });
    assert.equal(res.headers.get('allow'), 'POST');
    await expectError(res, 405);
    const del = await stack.fetch('/api/me', { method: 'DELETE' });
    assert.match(del.headers.get('allow') || '', /\bGET\b/);
    await expectError(del, 405);
  });

  test('oversized body: 413', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(4 * 1024 * 1024), email: 'a@example.org', password: 'p' });
    let res;
    try {
      res = await stack.fetch('/api/auth/register', json(big));
    } catch (e) {
      // The server may close the connection after answering before the whole body is read.
      assert.fail(`request failed instead of a 413 answer: ${e.cause?.code || e.message}`);
    }
    await expectError(res, 413, 'too_large');
  });

  test('malformed JSON: 400 saying where', async () => {
    const e = await expectError(
      await stack.fetch('/api/auth/register', json('{"name": "x", "email": oops}')),
      400,
      'invalid_argument',
    );
    assert.match(e.message, /\d/, `position in: ${e.message}`);
    assert.match(e.message, /position|offset|line|column|char/i, `position in: ${e.message}`);
  });

  test('JSON that is not an object: 400', async () => {
    await expectError(await stack.fetch('/api/auth/register', json('[1,2]')), 400, 'invalid_argument');
  });

  test('unknown field: 400 naming it', async () => {
    const e = await expectError(
      await stack.fetch(
        '/api/auth/register',
        json({ name: 'X', email: freshEmail(), password: 'long enough pw', isAdmin: true }),
      ),
      400,
      'invalid_argument',
    );
    assert.ok(e.field === 'isAdmin' || /isAdmin/.test(e.message), JSON.stringify(e));
  });

  test('a field of the wrong type: 400 naming it', async () => {
    const e = await expectError(
      await stack.fetch('/api/auth/register', json({ name: 42, email: freshEmail(), password: 'long enough pw' })),
      400,
      'invalid_argument',
    );
    assert.ok(e.field === 'name' || /name/.test(e.message), JSON.stringify(e));
  });

  test('X-Request-Id is echoed when given and generated when not', async () => {
    const given = await stack.fetch('/api/no-such-thing', { headers: { 'x-request-id': 'sys-test-4711' } });
    assert.equal(given.headers.get('x-request-id'), 'sys-test-4711');
    const e = await expectError(given, 404);
    assert.equal(e.requestId, 'sys-test-4711');

    const a = await stack.fetch('/healthz');
    const b = await stack.fetch('/healthz');
    await a.arrayBuffer();
    await b.arrayBuffer();
    const ida = a.headers.get('x-request-id');
    const idb = b.headers.get('x-request-id');
    assert.ok(ida && ida.length >= 8, `generated id: ${ida}`);
    assert.notEqual(ida, idb);
  });

  test('the request id reaches the service and its log', async () => {
    const rid = `sys-rid-${Date.now()}`;
    const res = await stack.fetch('/api/auth/register', json({ name: 'Log', email: freshEmail(), password: 'long enough pw' }, { 'x-request-id': rid }));
    assert.equal(res.status, 202);
    await res.arrayBuffer();
    let found = false;
    for (let i = 0; i < 20 && !found; i++) {
      found = stack.log('users').includes(rid);
      if (!found) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(found, 'the users service logged the request id');
  });

  test('a cross-origin POST is refused with 403', async () => {
    const body = { name: 'X', email: freshEmail(), password: 'long enough pw' };
    await expectError(
      await stack.fetch('/api/auth/register', json(body, { origin: 'http://evil.example' })),
      403,
      'forbidden',
    );
    const same = await stack.fetch('/api/auth/register', json(body, { origin: stack.url }));
    assert.equal(same.status, 202, 'a same-origin POST passes');
    await same.arrayBuffer();
  });

  test('error answers carry the security headers too', async () => {
    const res = await stack.fetch('/api/no-such-thing');
    assertSecurityHeaders(res);
    await res.arrayBuffer();
  });
});

describe('site', () => {
  test('/api/site names the journal', async () => {
    const res = await stack.fetch('/api/site');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.name, 'Journal of System Tests');
  });
});

// The API describes itself: GET /api/openapi.json is a valid OpenAPI 3.1 document (checked by
// @readme/openapi-parser), served with an ETag; it covers every path the browser app calls; the
// response check of stack.js (openapi-check.js) catches an answer that disagrees with it, and
// every answer in these suites goes through that check; /api/docs is the reference page.
// Every '/api/...' path the browser app builds, from its string literals and the
// concatenations and template literals around them ("{}" where a value goes in).
function appPaths() {
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'vendor' && e.name !== 'node_modules') walk(p);
      } else if (e.name.endsWith('.js') || e.name.endsWith('.mjs')) files.push(p);
    }
  };
  walk(path.join(ROOT, 'gateway', 'web'));
  const found = [];
  const lit = String.raw`(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\`(?:[^\`\\]|\\.)*\`)`;
  const operand = String.raw`(?:${lit}|[\w$.]+(?:\((?:[^()]|\([^()]*\))*\))?)`;
  const chain = new RegExp(String.raw`(['"\`])(/api(?:/[^'"\`]*)?)\1((?:\s*\+\s*${operand})*)`, 'g');
  for (const f of files) {
    const src = fs.readFileSync(f, 'utf8');
    for (const m of src.matchAll(chain)) {
      let p = m[2];
      for (const part of m[3].matchAll(new RegExp(String.raw`\s*\+\s*(${operand})`, 'g'))) {
        const o = part[1];
        p += /^['"`]/.test(o) ? o.slice(1, -1) : '{}';
      }
      p = p.replace(/\$\{[^}]*\}/g, '{}').split(/[?#]/)[0];
      if (p.endsWith('/')) continue; // a prefix test ("/api/"), not a call
      found.push({ file: path.relative(ROOT, f), path: p });
    }
  }
  return found;
}

describe('the API description', () => {
  let doc;
  let devDoc; // of a replica with EJ_DEV_MAIL=true, which describes the dev mail routes too
  let devGateway;

  before(async () => {
    const res = await fetch(`${stack.url}/api/openapi.json`);
    assert.equal(res.status, 200);
    doc = await res.json();
    devGateway = await startGateway(stack, { EJ_DEV_MAIL: 'true' });
    devDoc = await (await fetch(`${devGateway.url}/api/openapi.json`)).json();
  });

  after(() => {
    if (devGateway) devGateway.stop();
  });

  test('the document passes the OpenAPI validator', async () => {
    const { validate } = await import('@readme/openapi-parser');
    const result = await validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result.errors || result, null, 1).slice(0, 4000));
    assert.equal(result.specification, 'OpenAPI');
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'Journal of System Tests API');
  });

  test('it is served once built, with an ETag: If-None-Match gives 304', async () => {
    const a = await fetch(`${stack.url}/api/openapi.json`);
    const etag = a.headers.get('etag');
    assert.match(etag || '', /^"[0-9a-f]{32}"$/);
    assert.match(a.headers.get('content-type'), /^application\/json/);
    assert.equal(a.headers.get('cache-control'), 'no-cache');
    assert.deepEqual(await a.json(), doc, 'the same document every time');
    const b = await stack.fetch('/api/openapi.json', { headers: { 'if-none-match': etag } });
    assert.equal(b.status, 304);
    assert.equal((await b.text()).length, 0);
    assert.equal(b.headers.get('etag'), etag);
    const c = await stack.fetch('/api/openapi.json', { headers: { 'if-none-match': '"other"' } });
    assert.equal(c.status, 200);
    await c.arrayBuffer();
  });

  test('operations follow the route table: access, parameters, bodies, errors, files', () => {
    const me = doc.paths['/api/me'];
    assert.deepEqual(me.get.security, [{ session: [] }]);
    assert.ok(me.patch.requestBody.content['application/json; charset=utf-8']);
    assert.equal(me.get.responses['200'].content['application/json; charset=utf-8'].schema.$ref, '#/components/schemas/ej.users.MeResponse');
    assert.deepEqual(doc.paths['/api/auth/register'].post.security, []);
    assert.ok(doc.paths['/api/auth/register'].post.responses['202'], 'success status of the row');
    // Roles: any one of them.
    assert.deepEqual(doc.paths['/api/admin/invitations'].post.security, [{ session: ['editor'] }, { session: ['admin'] }]);
    // A GET's request fields are query parameters, a sub-message's fields too (page.limit).
    const q = doc.paths['/api/admin/users'].get.parameters.map((p) => `${p.in}:${p.name}`);
    for (const want of ['query:limit', 'query:cursor', 'query:role']) assert.ok(q.includes(want), `${want} in ${q}`);
    // Path parameters bind request fields and leave the body.
    const role = doc.paths['/api/admin/users/{user_id}/roles/{role}'].put;
    assert.deepEqual(role.parameters.map((p) => `${p.in}:${p.name}`), ['path:user_id', 'path:role']);
    const body = role.requestBody.content['application/json; charset=utf-8'].schema;
    assert.ok(!('userId' in body.properties) && !('role' in body.properties), JSON.stringify(body));
    // The login answer leaves the session token out (it is the cookie).
    const login = doc.paths['/api/auth/login'].post.responses['200'].content['application/json; charset=utf-8'].schema;
    assert.ok(!('sessionToken' in login.properties), JSON.stringify(login));
    // int64 as a string, enums by name.
    const user = doc.components.schemas['ej.users.User'].properties;
    assert.equal(user.createdAtMs.type, 'string');
    // Errors: one body.
    assert.equal(me.get.responses['401'].$ref, '#/components/responses/Unauthenticated');
    assert.ok(doc.components.schemas.Error.properties.error.required.includes('requestId'));
    // Files: raw and multipart uploads, ranged downloads.
    const files = doc.paths['/api/files'];
    assert.ok(files.put.requestBody.content['*/*']);
    assert.ok(files.post.requestBody.content['multipart/form-data']);
    const dl = doc.paths['/api/files/{file_id}'];
    for (const s of ['200', '206', '304', '416']) assert.ok(dl.get.responses[s], `download ${s}`);
    assert.ok(dl.head, 'HEAD of a download');
    assert.equal(doc.components.securitySchemes.session.in, 'cookie');
    assert.equal(doc.paths['/api/admin/dev-mail'], undefined, 'the dev mail routes only with EJ_DEV_MAIL=true');
    assert.ok(devDoc.paths['/api/admin/dev-mail'].get, 'and then they are described');
  });

  test("every path the browser app calls is in the document", () => {
    const templates = Object.keys(devDoc.paths).map((t) => t.split('/'));
    const known = (p) => {
      const segs = p.split('/');
      return templates.some(
        (t) => t.length === segs.length && t.every((s, i) => s === segs[i] || (/^\{.+\}$/.test(s) && segs[i] !== '')),
      );
    };
    const paths = appPaths();
    assert.ok(paths.length >= 30, `found only ${paths.length} paths in the app`);
    assert.ok(paths.some((p) => p.path === '/api/admin/users/{}/roles/{}'), 'concatenations are followed');
    const missing = paths.filter((p) => !known(p.path));
    assert.deepEqual(missing, [], 'paths the app calls but the document does not describe');
  });

  test('the response check catches an answer that disagrees with the document', async () => {
    const checker = new Checker(doc);
    const answer = (status, body, type = 'application/json; charset=utf-8') =>
      new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': type } });
    const url = `${stack.url}/api/site`;
    await checker.check('GET', url, answer(200, { name: 'x' }));
    await assert.rejects(checker.check('GET', url, answer(200, { name: 5 })), /does not match/);
    await assert.rejects(checker.check('GET', url, answer(200, { name: 'x', extra: 1 })), /does not match/);
    await assert.rejects(checker.check('GET', url, answer(418, { name: 'x' })), /not documented/);
    await assert.rejects(checker.check('GET', url, answer(200, 'x', 'text/plain')), /Content-Type/);
    const err = { error: { code: 'unauthenticated', message: 'sign in first', requestId: 'r1' } };
    await checker.check('GET', `${stack.url}/api/me`, answer(401, err));
    await assert.rejects(checker.check('GET', `${stack.url}/api/me`, answer(401, { error: 'no' })), /does not match/);
    await checker.check('DELETE', `${stack.url}/api/me`, answer(405, { error: { ...err.error, code: 'method_not_allowed' } }));
    await assert.rejects(checker.check('GET', `${stack.url}/api/nowhere`, answer(200, {})), /404 was due/);
  });

  test('real answers match it: an admin walks the GET routes', async () => {
    const admin = await createUser(stack, { roles: ['admin'] });
    const headers = { cookie: admin.cookie };
    for (const p of ['/api/me', '/api/site', '/api/consent', '/api/privacy', '/api/admin/users?limit=5', '/api/admin/activity?limit=5', '/api/admin/consent', '/api/admin/mail-templates', '/healthz', '/readyz']) {
      const res = await stack.fetch(p, { headers }); // stack.fetch checks the answer
      assert.equal(res.status, 200, p);
      await res.arrayBuffer();
    }
    const off = await stack.fetch('/api/admin/dev-mail', { headers }); // not described: 404
    assert.equal(off.status, 404);
    await off.arrayBuffer();
    const bad = await stack.fetch('/api/admin/users?nonsense=1', { headers });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  test('/api/docs is the reference page, its script and styles served from this site', async () => {
    const res = await stack.fetch('/api/docs');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.some((a) => /swagger-ui-bundle\.js$/.test(a)), html);
    for (const a of assets) {
      assert.ok(a.startsWith('/'), `no other origin: ${a}`);
      if (a === '/api/openapi.json') continue;
      const r = await stack.fetch(a);
      assert.equal(r.status, 200, `${a} is served (make copies the vendored files)`);
      await r.arrayBuffer();
    }
  });
});
