'use strict';
// What an error tells the client, over HTTP: time bounds and paging cursors are checked before
// any SQL, with a 400 naming the field; a failure inside the database reaches the client as a
// stable code and a sentence for people while the service logs the detail with the request id;
// a JSON body is refused in words of ours (a NUL inside a string names its field), never with
// the JSON library's text. One private stack.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startStack, createUser } = require('./stack.js');

let stack;
let admin;

const json = (method, body, headers = {}) => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
});
const as = (who) => ({ cookie: who.cookie });

// Words of a library or of the database that must never reach a client.
const LEAKS = /database|SQLSTATE|\b2[0-9][0-9A-Z]{3}\b|interval out of range|out of range for type|invalid byte sequence|JSON_|jansson|near '|violates|constraint/i;

async function expectError(res, status, code) {
  const text = await res.text();
  assert.equal(res.status, status, `status (body: ${text})`);
  const body = JSON.parse(text);
  assert.equal(typeof body.error, 'object', `error object in ${text}`);
  if (code) assert.equal(body.error.code, code, `code in ${text}`);
  assert.ok(body.error.message && body.error.message.length > 0, 'a message for a person');
  assert.doesNotMatch(body.error.message, LEAKS, `no library or database text in ${text}`);
  return body.error;
}

const b64url = (s) => Buffer.from(s, 'binary').toString('base64url');
const UUID = '00000000-0000-4000-8000-000000000000';

before(async () => {
  stack = startStack();
  admin = await createUser(stack, { roles: ['admin'], name: 'Errors Admin' });
});

after(() => {
  if (stack) stack.stop();
});

describe('time bounds are checked before the query', () => {
  test('an activity range beyond the year 9999 is a 400 naming its field', async () => {
    const cases = [
      ['toMs=9223372036854775807', 'to_ms', /toMs/],
      ['fromMs=9223372036854775807', 'from_ms', /fromMs/],
      ['toMs=253402300800000', 'to_ms', /toMs/],
      ['fromMs=-1', 'from_ms', /fromMs/],
      ['toMs=-9223372036854775808', 'to_ms', /toMs/],
    ];
    for (const [q, field, words] of cases) {
      const e = await expectError(await stack.fetch(`/api/admin/activity?${q}`, { headers: as(admin) }), 400, 'invalid_argument');
      assert.equal(e.field, field, q);
      assert.match(e.message, words, q);
    }
    const res = await stack.fetch('/api/admin/activity?fromMs=1&toMs=253402300799999', { headers: as(admin) });
    assert.equal(res.status, 200, await res.text());
  });
});

describe('paging cursors are checked before the query', () => {
  test('forged users-list cursors: 400 page.cursor, no SQLSTATE', async () => {
    const forged = [
      // A key that is not UTF-8 (PostgreSQL would say 22021).
      ['name', b64url(`name\n\xff\xfe\n${UUID}`)],
      ['email', b64url(`email\n\xc3\x28@x\n${UUID}`)],
      // A created time beyond bigint or beyond an interval (22003, 22008).
      ['created', b64url(`created\n99999999999999999999\n${UUID}`)],
      ['created', b64url(`created\n9223372036854775807\n${UUID}`)],
      ['created', b64url(`created\n-5\n${UUID}`)],
      // Not base64, not ours, another sort's.
      ['name', 'not a cursor!'],
      ['name', b64url(`created\n1\n${UUID}`)],
      ['name', b64url('name\nx\nnot-a-uuid')],
    ];
    for (const [sort, cursor] of forged) {
      const e = await expectError(
        await stack.fetch(`/api/admin/users?sort=${sort}&cursor=${encodeURIComponent(cursor)}`, { headers: as(admin) }),
        400,
        'invalid_argument',
      );
      assert.equal(e.field, 'page.cursor', cursor);
    }
    const valid = Buffer.from(`name\nh\u00e9\n${UUID}`, 'utf8').toString('base64url');
    const ok = await stack.fetch(`/api/admin/users?sort=name&cursor=${valid}`, { headers: as(admin) });
    assert.equal(ok.status, 200, await ok.text());
  });

  test('forged activity cursors: 400 page.cursor', async () => {
    for (const cursor of ['99999999999999999999', '-1', '0', '1x', '\u00e9']) {
      const e = await expectError(
        await stack.fetch(`/api/admin/activity?cursor=${encodeURIComponent(cursor)}`, { headers: as(admin) }),
        400,
        'invalid_argument',
      );
      assert.equal(e.field, 'page.cursor', cursor);
    }
  });
});

describe('a database failure stays in the service log', () => {
  test('the client gets a stable code and a sentence; the log has the detail and the request id', async () => {
    const u = await createUser(stack, { roles: ['author'] });
    // A constraint the service does not know of: its refusal can only come from PostgreSQL.
    stack.sql("ALTER TABLE users.users ADD CONSTRAINT errors_test_trap CHECK (affiliation IS DISTINCT FROM 'trap 23514')");
    try {
      const e = await expectError(
        await stack.fetch('/api/me', json('PATCH', { name: 'Trapped', affiliation: 'trap 23514' }, as(u))),
        400,
        'invalid_argument',
      );
      assert.equal(e.field, undefined, 'no constraint name as the field');
      assert.ok(e.requestId, 'a request id to quote');
      const log = path.join(stack.dir, 'log', 'users.log');
      const deadline = Date.now() + 5000;
      let line;
      while (!line && Date.now() < deadline) {
        line = fs.readFileSync(log, 'utf8').split('\n').find((l) => l.includes(e.requestId) && l.includes('23514'));
        if (!line) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(line, `the users log holds the detail with request id ${e.requestId}`);
      assert.match(line, /errors_test_trap/);
    } finally {
      stack.sql('ALTER TABLE users.users DROP CONSTRAINT errors_test_trap');
    }
  });
});

describe('JSON bodies are refused in words of ours', () => {
  test('a NUL inside a string: 400 naming the field', async () => {
    for (const [route, body, field] of [
      ['/api/auth/password/forgot', '{"email":"\\u0000"}', 'email'],
      ['/api/auth/login', '{"email":"a@b.org","password":"x\\u0000y"}', 'password'],
      ['/api/auth/register', '{"name":"A\\u0000","email":"a@b.org","password":"long enough 123"}', 'name'],
    ]) {
      const e = await expectError(await stack.fetch(route, json('POST', body)), 400, 'invalid_argument');
      assert.equal(e.field, field, route);
      assert.match(e.message, /must not contain a NUL character/, route);
    }
  });

  test('syntax errors say where and what, never in the library words', async () => {
    for (const body of ['{"email":', '{"email":"a"} x', '{"email":"a","email":"b"}', '{"email":tru}', '{"\\u0000":1}']) {
      const e = await expectError(await stack.fetch('/api/auth/password/forgot', json('POST', body)), 400, 'invalid_argument');
      assert.match(e.message, /line \d+, column \d+/, body);
    }
  });
});
