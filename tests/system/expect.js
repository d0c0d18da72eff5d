'use strict';
// What the node suites assert about answers, written once: expectOk and expectError check a
// response against the API's documented shapes; until polls for a condition.
const assert = require('node:assert/strict');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A 2xx answer; returns its JSON body ({} when empty).
async function expectOk(res, what = '') {
  const text = await res.text();
  assert.ok(res.status >= 200 && res.status < 300, `${what} status ${res.status} (body: ${text})`);
  return text ? JSON.parse(text) : {};
}

// The documented error answer: `status`, JSON, {error: {code, message, requestId}} with the
// request id also in X-Request-Id, and `code` when given. Returns the error object.
async function expectError(res, status, code) {
  const text = await res.text();
  assert.equal(res.status, status, `status (body: ${text})`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  const body = JSON.parse(text);
  assert.equal(typeof body.error, 'object', `error object in ${text}`);
  if (code) assert.equal(body.error.code, code, `code in ${text}`);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, 'a message for a person');
  assert.equal(typeof body.error.requestId, 'string');
  assert.ok(body.error.requestId.length > 0, 'requestId');
  assert.equal(body.error.requestId, res.headers.get('x-request-id'), 'body and header agree');
  return body.error;
}

// Polls `fn` until it returns a truthy value or `ms` pass; returns the last value (a throw
// counts as no value yet).
async function until(ms, fn, every = 100) {
  const deadline = Date.now() + ms;
  let v;
  for (;;) {
    try {
      v = await fn();
    } catch {
      v = undefined;
    }
    if (v || Date.now() >= deadline) return v;
    await sleep(every);
  }
}

module.exports = { expectOk, expectError, until, sleep };
