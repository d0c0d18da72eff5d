'use strict';
// System tests: the gateway refuses ambiguous request framing (RFC 9112 6.3) on the first call,
// before it reads a body, with 400 and Connection: close, so the rest of a smuggled body is
// never served as a second request. Raw sockets: fetch cannot send these.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startStack } = require('./stack.js');

let stack;
let port;

before(() => {
  stack = startStack({});
  port = Number(new URL(stack.url).port);
});

after(() => {
  if (stack) stack.stop();
});

// Sends `raw` and reads until the server closes (or 5 s pass): the status lines it answered.
function exchange(raw) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, 5000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
    sock.write(raw, 'latin1');
  });
}

// A status line starts the answer or follows the previous answer's body (no newline between).
const statuses = (text) => [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
const POST = 'POST /api/auth/password/forgot HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n';

const ambiguous = {
  'two Content-Length headers (the rest of the body would be a second request)':
    POST + 'Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /api/site HTTP/1.1\r\nHost: x\r\n\r\n',
  'Content-Length with Transfer-Encoding': POST + 'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'a space before the colon': POST + 'Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding: identity': POST + 'Transfer-Encoding: identity\r\n\r\n{}',
  'Transfer-Encoding: gzip, chunked': POST + 'Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding: xchunked': POST + 'Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  'HTTP/1.1 without Host': 'GET /api/site HTTP/1.1\r\n\r\n',
  'two Host headers': 'GET /api/site HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
};

for (const [name, raw] of Object.entries(ambiguous)) {
  test(`refused at once, one answer, connection closed: ${name}`, async () => {
    const { text, closed } = await exchange(raw);
    assert.deepEqual(statuses(text), [400], text);
    assert.ok(closed, 'the server closed the connection');
    if (/Connection: close/i.test(text)) {
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
      assert.equal(body.error.code, 'invalid_argument');
      assert.ok(body.error.message.length > 0);
    }
  });
}

test('a folded header line is refused, not answered twice', async () => {
  const { text, closed } = await exchange(POST + 'Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n');
  assert.deepEqual(statuses(text), [400], text);
  assert.ok(closed);
});

test('well-framed requests still pass: chunked, HTTP/1.0 without Host, keep-alive pipelining', async () => {
  const chunked = await exchange(POST + 'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
    '13\r\n{"email":"a@b.org"}\r\n0\r\n\r\n');
  assert.deepEqual(statuses(chunked.text), [200], chunked.text);
  const old = await exchange('GET /api/site HTTP/1.0\r\n\r\n');
  assert.deepEqual(statuses(old.text), [200], old.text);
  const two = await exchange('GET /api/site HTTP/1.1\r\nHost: a\r\n\r\nGET /api/site HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statuses(two.text), [200, 200], two.text);
});
