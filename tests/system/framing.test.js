'use strict';
// System tests: the gateway refuses ambiguous request framing (RFC 9112 6.3) on the first call,
// before it reads a body, with 400 and Connection: close, so the rest of a smuggled body is
// never served as a second request. Also what a request head may hold: no NUL byte, no %00,
// no second copy of a single-valued header, at most 16 KiB (431) and an 8 KiB target (414), all
// answered once with the JSON error body; and a head must arrive whole within its deadline
// (408), however slowly its bytes trickle. Raw sockets: fetch cannot send these.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startStack, signUp } = require('./stack.js');

let stack;
let port;

const HEAD_TIMEOUT_MS = 2000;

before(() => {
  stack = startStack({ env: { EJ_HTTP_HEAD_TIMEOUT_MS: String(HEAD_TIMEOUT_MS) } });
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

// The body of the one answer in `text` (Content-Length framed), parsed as JSON.
function jsonBody(text) {
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)[1]);
  const start = text.indexOf('\r\n\r\n') + 4;
  return JSON.parse(text.slice(start, start + len));
}

// One answer with `status`, the JSON error body with `code`, and the connection closed.
function assertRefused({ text, closed }, status, code, message = /./) {
  assert.deepEqual(statuses(text), [status], text.slice(0, 400));
  assert.ok(closed, 'the server closed the connection');
  assert.match(text, /\r\nContent-Type: application\/json/i);
  const body = jsonBody(text);
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.match(body.error.message, message);
  assert.ok(body.error.requestId);
}

const GET = (target, headers = '') => `GET ${target} HTTP/1.1\r\nHost: h\r\n${headers}Connection: close\r\n\r\n`;

const NUL = /NUL/;
const ONCE = /more than once/;
const refusedNul = {
  'a NUL byte in the request target': [GET('/api/site\0.html'), NUL],
  'a NUL byte in the method': ['GE\0T /api/site HTTP/1.1\r\nHost: h\r\n\r\n', NUL],
  'a NUL byte in a header value': [GET('/api/site', 'X-Note: a\0b\r\n'), NUL],
  'a NUL byte in the Host value': ['GET /api/site HTTP/1.1\r\nHost: h\0evil\r\n\r\n', NUL],
  '%00 in the query (would search for "a")': [GET('/api/site?query=a%00b'), /%00/],
  '%00 in the path (would serve app.js)': [GET('/app.js%00.html'), /%00/],
  'a folded header line': [GET('/api/site', 'X-Note: a\r\n b\r\n'), /folded/],
  'two Cookie headers': [GET('/api/site', 'Cookie: a=1\r\nCookie: b=2\r\n'), ONCE],
  'two Origin headers': [POST + 'Origin: http://h\r\nOrigin: http://evil\r\nContent-Length: 2\r\n\r\n{}', ONCE],
  'two Content-Type headers': [POST + 'Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}', ONCE],
  'two Range headers': [GET('/app.js', 'Range: bytes=0-1\r\nRange: bytes=5-9\r\n'), ONCE],
  'two Idempotency-Key headers': [POST + 'Idempotency-Key: a\r\nIdempotency-Key: b\r\nContent-Length: 2\r\n\r\n{}', ONCE],
  'a query parameter given twice': [GET('/api/admin/users?limit=5&limit=500'), /query parameter/],
};

for (const [name, [raw, message]] of Object.entries(refusedNul)) {
  test(`400 JSON, one answer, connection closed: ${name}`, async () => {
    assertRefused(await exchange(raw), 400, 'invalid_argument', message);
  });
}

test('a query with parameters and escapes is not taken for a NUL', async () => {
  const { text } = await exchange(GET('/api/site?a=1&b=%20x%2500&c'));
  assert.deepEqual(statuses(text), [200], text.slice(0, 300));
});

test('the session cookie given twice in one Cookie header is taken as none', async () => {
  const alice = await signUp(stack);
  const own = await exchange(GET('/api/me', `Cookie: ${alice.cookie}\r\n`));
  assert.deepEqual(statuses(own.text), [200], own.text.slice(0, 300));
  // A second one (planted for a parent domain, say) first or last: neither is taken.
  for (const both of [`${alice.cookie}; ej_session=planted`, `ej_session=planted; ${alice.cookie}`]) {
    const { text } = await exchange(GET('/api/me', `Cookie: ${both}\r\n`));
    assert.deepEqual(statuses(text), [401], text.slice(0, 300));
  }
});

test('If-None-Match on two lines is read as one list', async () => {
  const first = await exchange(GET('/app.js'));
  const etag = /\r\nETag: *(\S+)/i.exec(first.text)[1];
  const { text } = await exchange(GET('/app.js', `If-None-Match: "other"\r\nIf-None-Match: ${etag}\r\n`));
  assert.deepEqual(statuses(text), [304], text.slice(0, 300));
});

test('headers up to 16 KiB work: 500 short cookies, one 15 KiB cookie', async () => {
  const many = Array.from({ length: 500 }, (_, i) => `c${String(i).padStart(3, '0')}=v${i}`).join('; ');
  assert.ok(many.length > 4000);
  const a = await exchange(GET('/api/site', `Cookie: ${many}\r\n`));
  assert.deepEqual(statuses(a.text), [200], a.text.slice(0, 300));
  const b = await exchange(GET('/api/site', `Cookie: big=${'x'.repeat(15 * 1024)}\r\n`));
  assert.deepEqual(statuses(b.text), [200], b.text.slice(0, 300));
});

test('a 30 KB cookie gets one clean 431 with the JSON error body', async () => {
  assertRefused(await exchange(GET('/api/site', `Cookie: big=${'x'.repeat(30000)}\r\n`)), 431, 'headers_too_large');
});

test('a request target over 8 KiB gets one 414 with the JSON error body', async () => {
  assertRefused(await exchange(GET(`/api/site?q=${'a'.repeat(9000)}`)), 414, 'uri_too_long');
});

// One header line every 400 ms: an idle timeout would never fire; the head deadline does.
test('a head trickled a line at a time is cut off at its deadline with 408', async () => {
  const started = Date.now();
  const result = await new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let timer = null;
    const stop = setTimeout(() => {
      clearInterval(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, HEAD_TIMEOUT_MS + 4000);
    sock.on('connect', () => {
      sock.write('GET /api/site HTTP/1.1\r\nHost: h\r\n');
      timer = setInterval(() => sock.write('X-Slow: 1\r\n'), 400);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => {
      clearInterval(timer);
      clearTimeout(stop);
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
      else reject(e);
    });
    sock.on('close', () => {
      clearInterval(timer);
      clearTimeout(stop);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
  const elapsed = Date.now() - started;
  assert.ok(result.closed, `still open after ${elapsed} ms`);
  assert.ok(elapsed >= HEAD_TIMEOUT_MS - 100 && elapsed < HEAD_TIMEOUT_MS + 2000, `closed after ${elapsed} ms`);
  if (result.text) {
    assert.deepEqual(statuses(result.text), [408], result.text);
    assert.equal(jsonBody(result.text).error.code, 'request_timeout');
  }
});

// The default per-address limit (EJ_HTTP_PER_IP_CONNECTIONS, 256): connections past it from one
// address are closed at once, and other addresses are served meanwhile.
test('one address gets 256 connections; the rest are closed at once, others still served', async () => {
  const socks = [];
  let closed = 0;
  for (let i = 0; i < 300; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.9' });
    s.on('error', () => {});
    s.on('close', () => closed++);
    s.resume();
    socks.push(s);
  }
  try {
    const until = Date.now() + 3000;
    while (closed < 44 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // and no more than those
    assert.equal(closed, 300 - 256);
    const { text } = await exchange(GET('/api/site'));
    assert.deepEqual(statuses(text), [200], text.slice(0, 300));
  } finally {
    for (const s of socks) s.destroy();
  }
});
