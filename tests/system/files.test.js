'use strict';
// System tests of file uploads and downloads through the gateway (gateway/stream.c) and the
// files service: round trips of every size that matters to the chunking, raw PUT and multipart,
// wrong type, too large (declared and streamed), a client leaving mid-upload, access by another
// user and by grant, and Range requests. The same suite runs against the local backend and,
// when the files service and an S3 test server are available, against S3 (tests/s3).

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startStack, signUp, createUser } = require('./stack.js');

const ROOT = path.resolve(__dirname, '..', '..');
const CHUNK = 256 * 1024; // the files service's chunk_size (proto/files.proto)
const MIB = 1024 * 1024;
const GRANT_KEY = crypto.randomBytes(32).toString('hex');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// A buffer of `n` bytes libmagic calls a PDF (a PDF header, then random bytes).
function pdfLike(n) {
  const head = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  const buf = crypto.randomBytes(n);
  head.copy(buf, 0, 0, Math.min(head.length, n));
  return buf;
}

// A 1x1 PNG: refused for a manuscript.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

// A grant token as services/common/grant.h defines it.
function grant(fileId, userId, purpose, expiresAtMs, key = GRANT_KEY) {
  const body = Buffer.concat([
    Buffer.from([1]),
    Buffer.from(`${fileId}\n${userId}\n${purpose}\n${expiresAtMs}`, 'utf8'),
  ]);
  const mac = crypto.createHmac('sha256', Buffer.from(key, 'hex')).update(body).digest();
  return Buffer.concat([body, mac]).toString('base64url');
}

async function putFile(stack, cookie, data, { kind = 'manuscript', name = 'paper.pdf', type } = {}) {
  const headers = { cookie };
  if (type) headers['content-type'] = type;
  const q = new URLSearchParams({ kind, name });
  return stack.fetch(`/api/files?${q}`, { method: 'PUT', headers, body: data });
}

async function postFile(stack, cookie, data, { kind = 'manuscript', name = 'paper.pdf', type } = {}) {
  const form = new FormData();
  form.append('kind', kind);
  form.append('file', new Blob([data], { type: type || 'application/octet-stream' }), name);
  return stack.fetch('/api/files', { method: 'POST', headers: { cookie }, body: form });
}

async function expectJson(res, status) {
  const text = await res.text();
  assert.equal(res.status, status, `status (body: ${text.slice(0, 300)})`);
  return JSON.parse(text);
}

async function download(stack, cookie, id, headers = {}, query = '') {
  const res = await stack.fetch(`/api/files/${id}${query}`, {
    headers: cookie ? { cookie, ...headers } : headers,
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { res, body };
}

// Sends a request by hand: headers, `bodyBytes` of the body, then closes the socket.
function leaveMidUpload(stack, cookie, declared, bodyBytes) {
  return new Promise((resolve) => {
    const s = net.connect(Number(stack.info.EJ_HTTP_PORT), '127.0.0.1', () => {
      s.write(
        `PUT /api/files?kind=manuscript&name=left.pdf HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Cookie: ${cookie}\r\nContent-Type: application/pdf\r\nContent-Length: ${declared}\r\n\r\n`,
      );
      s.write(pdfLike(bodyBytes), () => setTimeout(() => s.destroy(), 200));
    });
    s.on('error', () => {});
    s.on('close', resolve);
  });
}

// The first response line and headers of a raw request (no body sent).
function rawHead(stack, request) {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = net.connect(Number(stack.info.EJ_HTTP_PORT), '127.0.0.1', () => s.write(request));
    s.setTimeout(10000, () => {
      s.destroy();
      reject(new Error(`no answer; got ${JSON.stringify(got)}`));
    });
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function haveFilesService() {
  return fs.existsSync(path.join(ROOT, 'services', 'files', 'main.c'));
}

// The S3 run needs the files service to know EJ_FILES_BACKEND=s3 and an S3 server (tests/s3).
function s3Available() {
  const main = path.join(ROOT, 'services', 'files', 'main.c');
  const server = path.join(ROOT, 'tests', 's3', 'node_modules', 's3rver');
  if (!fs.existsSync(main) || !fs.existsSync(server)) return false;
  const src = fs.readdirSync(path.join(ROOT, 'services', 'files'))
    .filter((f) => f.endsWith('.c'))
    .map((f) => fs.readFileSync(path.join(ROOT, 'services', 'files', f), 'utf8'))
    .join('\n');
  return src.includes('EJ_FILES_BACKEND');
}

async function startS3() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-s3-'));
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
  const script =
    `const S3rver = require('s3rver');` +
    `new S3rver({ port: ${port}, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(dir)},` +
    ` configureBuckets: [{ name: 'ej-files' }] }).run().then(() => console.log('ready'));`;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: path.join(ROOT, 'tests', 's3'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => d.toString().includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function fileSuite(label, envFn) {
  describe(`files (${label})`, () => {
    let stack;
    let filesDir;
    let extra;
    let alice;
    let bob;

    before(async () => {
      filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-files-'));
      extra = envFn ? await envFn() : { env: {}, stop() {} };
      stack = startStack({
        env: { EJ_GRANT_KEY: GRANT_KEY, EJ_FILES_DIR: filesDir, ...extra.env },
      });
      alice = await signUp(stack);
      bob = await signUp(stack);
    });

    after(() => {
      try {
        if (stack) stack.stop();
      } finally {
        if (extra) extra.stop();
        if (filesDir) fs.rmSync(filesDir, { recursive: true, force: true });
      }
    });

    // An empty file is an attachment (a manuscript must have content).
    const sizes = [
      ['0 bytes', () => Buffer.alloc(0), 'empty.txt', 'attachment'],
      ['1 byte', () => Buffer.from('a'), 'one.txt', 'manuscript'],
      ['exactly one chunk', () => pdfLike(CHUNK), 'chunk.pdf', 'manuscript'],
      ['one chunk + 1', () => pdfLike(CHUNK + 1), 'chunk1.pdf', 'manuscript'],
      ['50 MiB', () => pdfLike(50 * MIB), 'big.pdf', 'manuscript'],
    ];

    for (const [what, make, name, kind] of sizes) {
      for (const [how, send] of [
        ['raw PUT', putFile],
        ['multipart', postFile],
      ]) {
        test(`round trip of ${what} by ${how} is byte-identical`, async () => {
          const data = make();
          const info = await expectJson(await send(stack, alice.cookie, data, { name, kind }), 201);
          assert.equal(Number(info.size), data.length);
          assert.equal(info.sha256, sha256(data));
          assert.equal(info.ownerId, alice.user.id);
          const { res, body } = await download(stack, alice.cookie, info.id);
          assert.equal(res.status, 200);
          assert.equal(Number(res.headers.get('content-length')), data.length);
          assert.equal(res.headers.get('etag'), `"${info.sha256}"`);
          assert.equal(res.headers.get('accept-ranges'), 'bytes');
          assert.match(res.headers.get('content-disposition') || '', /^attachment; filename="/);
          assert.equal(body.length, data.length);
          assert.equal(sha256(body), sha256(data));
        });
      }
    }

    test('the answer carries the type decided from the content, whatever the client said', async () => {
      const data = pdfLike(1000);
      const info = await expectJson(
        await putFile(stack, alice.cookie, data, { name: 'x.txt', type: 'text/plain' }),
        201,
      );
      assert.equal(info.contentType, 'application/pdf');
      const { res } = await download(stack, alice.cookie, info.id);
      assert.match(res.headers.get('content-type'), /^application\/pdf/);
    });

    test('HEAD gives the length and ETag without a body; If-None-Match gives 304', async () => {
      const data = pdfLike(3 * CHUNK + 5);
      const info = await expectJson(await putFile(stack, alice.cookie, data), 201);
      const head = await stack.fetch(`/api/files/${info.id}`, {
        method: 'HEAD',
        headers: { cookie: alice.cookie },
      });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('content-length')), data.length);
      assert.equal(head.headers.get('etag'), `"${info.sha256}"`);
      const again = await download(stack, alice.cookie, info.id, {
        'if-none-match': `"${info.sha256}"`,
      });
      assert.equal(again.res.status, 304);
      assert.equal(again.body.length, 0);
    });

    test('a wrong type is refused with 415 naming the detected type', async () => {
      for (const send of [putFile, postFile]) {
        const res = await send(stack, alice.cookie, PNG, { name: 'paper.pdf', type: 'application/pdf' });
        const body = await expectJson(res, 415);
        assert.match(body.error.message, /image\/png/);
      }
    });

    test('a wrong type is refused on an early chunk of a large body', async () => {
      const big = Buffer.concat([PNG, crypto.randomBytes(8 * MIB)]);
      const res = await putFile(stack, alice.cookie, big, { name: 'a.pdf' });
      const body = await expectJson(res, 415);
      assert.match(body.error.message, /image\/png/);
    });

    test('a declared size over the limit is refused with 413 before the body is sent', async () => {
      const answer = await rawHead(
        stack,
        `PUT /api/files?kind=manuscript&name=huge.pdf HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Cookie: ${alice.cookie}\r\nContent-Type: application/pdf\r\n` +
          `Content-Length: ${200 * MIB}\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 413 /);
    });

    test('a streamed body over the limit is refused with 413 (no Content-Length)', async () => {
      let sent = 0;
      const limit = 65 * MIB;
      const piece = pdfLike(MIB);
      const stream = new ReadableStream({
        pull(ctrl) {
          if (sent >= limit) return ctrl.close();
          sent += piece.length;
          ctrl.enqueue(new Uint8Array(piece));
        },
      });
      const res = await stack.fetch('/api/files?kind=manuscript&name=endless.pdf', {
        method: 'PUT',
        headers: { cookie: alice.cookie },
        body: stream,
        duplex: 'half',
      });
      const body = await expectJson(res, 413);
      assert.equal(body.error.code, 'too_large');
    });

    test('a multipart body over the limit is refused with 413', async () => {
      const res = await postFile(stack, alice.cookie, pdfLike(65 * MIB), { name: 'big.pdf' });
      await expectJson(res, 413);
    });

    test('uploads need a session; a cross-site upload is refused', async () => {
      const res = await putFile(stack, '', Buffer.from('a'));
      await expectJson(res, 401);
      const cross = await stack.fetch('/api/files?kind=manuscript&name=a.txt', {
        method: 'PUT',
        headers: { cookie: alice.cookie, origin: 'http://evil.example' },
        body: 'a',
      });
      await expectJson(cross, 403);
    });

    test('a multipart body that ends before its closing boundary is refused, not stored cut short', async () => {
      const b = 'ejCutShort7MA4';
      const head = `--${b}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nmanuscript\r\n` +
        `--${b}\r\nContent-Disposition: form-data; name="file"; filename="cut.pdf"\r\n` +
        'Content-Type: application/pdf\r\n\r\n';
      const body = Buffer.concat([Buffer.from(head), pdfLike(100000)]);
      const res = await stack.fetch('/api/files', {
        method: 'POST',
        headers: { cookie: alice.cookie, 'content-type': `multipart/form-data; boundary=${b}` },
        body,
      });
      const answer = await expectJson(res, 400);
      assert.match(answer.error.message, /closing boundary/);
      // The same form, closed, is stored whole.
      const closed = await stack.fetch('/api/files', {
        method: 'POST',
        headers: { cookie: alice.cookie, 'content-type': `multipart/form-data; boundary=${b}` },
        body: Buffer.concat([body, Buffer.from(`\r\n--${b}--\r\n`)]),
      });
      const info = await expectJson(closed, 201);
      assert.equal(Number(info.size), 100000);
    });

    test('an unknown kind is refused', async () => {
      const res = await putFile(stack, alice.cookie, Buffer.from('a'), { kind: 'nonsense' });
      await expectJson(res, 400);
    });

    test('a client leaving mid-upload leaves no file, no temp file, and no growth of the gateway', async () => {
      const owner = await signUp(stack);
      const gwPid = stack.pid('gateway');
      // Warm up, then measure over many abandoned uploads.
      await leaveMidUpload(stack, owner.cookie, 20 * MIB, 3 * MIB);
      await sleep(300);
      const before = rssKiB(gwPid);
      for (let i = 0; i < 20; i++) await leaveMidUpload(stack, owner.cookie, 20 * MIB, 3 * MIB);
      await sleep(1000);
      const grown = rssKiB(gwPid) - before;
      assert.ok(grown < 16 * 1024, `gateway RSS grew by ${grown} KiB over 20 abandoned uploads`);
      const rows = stack.sql(`SELECT count(*) FROM files.files WHERE owner_id = '${owner.user.id}'`);
      assert.equal(rows[0][0], '0', 'no file row for an abandoned upload');
      // The service removes the temp files of aborted uploads.
      let left = [];
      for (let i = 0; i < 50; i++) {
        left = [];
        const walk = (d) => {
          for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            if (e.isDirectory()) walk(path.join(d, e.name));
            else if (!e.name.endsWith('.lock')) left.push(path.join(d, e.name)); // a replica's lock
          }
        };
        const tmp = path.join(filesDir, 'tmp');
        if (fs.existsSync(tmp)) walk(tmp);
        if (left.length === 0) break;
        await sleep(100);
      }
      assert.deepEqual(left, [], 'temp files left behind');
      // The service still works for this user afterwards.
      await expectJson(await putFile(stack, owner.cookie, Buffer.from('after')), 201);
    });

    describe('access', () => {
      let info;
      let data;
      before(async () => {
        data = pdfLike(2 * CHUNK + 7);
        info = await expectJson(await putFile(stack, alice.cookie, data, { name: 'mine.pdf' }), 201);
      });

      test('another user cannot read a fresh upload', async () => {
        const { res } = await download(stack, bob.cookie, info.id);
        assert.ok([403, 404].includes(res.status), `status ${res.status}`);
      });

      test('a visitor cannot read it either', async () => {
        const { res } = await download(stack, '', info.id);
        assert.ok([401, 403, 404].includes(res.status), `status ${res.status}`);
      });

      test('an unknown file is 404', async () => {
        const { res } = await download(stack, alice.cookie, crypto.randomUUID());
        assert.equal(res.status, 404);
      });

      test('a valid grant for the reader opens it', async () => {
        const g = grant(info.id, bob.user.id, 'read', Date.now() + 60000);
        const { res, body } = await download(stack, bob.cookie, info.id, {}, `?grant=${g}`);
        assert.equal(res.status, 200);
        assert.equal(sha256(body), info.sha256);
      });

      test('an expired grant is refused', async () => {
        const g = grant(info.id, bob.user.id, 'read', Date.now() - 1000);
        const { res } = await download(stack, bob.cookie, info.id, {}, `?grant=${g}`);
        assert.equal(res.status, 403);
      });

      test('a grant for another file is refused', async () => {
        const g = grant(crypto.randomUUID(), bob.user.id, 'read', Date.now() + 60000);
        const { res } = await download(stack, bob.cookie, info.id, {}, `?grant=${g}`);
        assert.equal(res.status, 403);
      });

      test('a grant for another user is refused', async () => {
        const carol = await signUp(stack);
        const g = grant(info.id, bob.user.id, 'read', Date.now() + 60000);
        const { res } = await download(stack, carol.cookie, info.id, {}, `?grant=${g}`);
        assert.equal(res.status, 403);
      });

      test('a grant signed with another key is refused', async () => {
        const other = crypto.randomBytes(32).toString('hex');
        const g = grant(info.id, bob.user.id, 'read', Date.now() + 60000, other);
        const { res } = await download(stack, bob.cookie, info.id, {}, `?grant=${g}`);
        assert.equal(res.status, 403);
      });

      describe('Range', () => {
        const range = (h) => download(stack, alice.cookie, info.id, { range: h });

        test('the first bytes', async () => {
          const { res, body } = await range('bytes=0-99');
          assert.equal(res.status, 206);
          assert.equal(res.headers.get('content-range'), `bytes 0-99/${data.length}`);
          assert.deepEqual(body, data.subarray(0, 100));
        });

        test('the middle, across a chunk boundary', async () => {
          const a = CHUNK - 10;
          const b = CHUNK + 20;
          const { res, body } = await range(`bytes=${a}-${b}`);
          assert.equal(res.status, 206);
          assert.equal(res.headers.get('content-range'), `bytes ${a}-${b}/${data.length}`);
          assert.equal(Number(res.headers.get('content-length')), b - a + 1);
          assert.deepEqual(body, data.subarray(a, b + 1));
        });

        test('an open-ended range', async () => {
          const a = CHUNK + 3;
          const { res, body } = await range(`bytes=${a}-`);
          assert.equal(res.status, 206);
          assert.deepEqual(body, data.subarray(a));
        });

        test('a suffix', async () => {
          const { res, body } = await range('bytes=-500');
          assert.equal(res.status, 206);
          assert.equal(
            res.headers.get('content-range'),
            `bytes ${data.length - 500}-${data.length - 1}/${data.length}`,
          );
          assert.deepEqual(body, data.subarray(data.length - 500));
        });

        test('an unsatisfiable range is 416 with the size', async () => {
          const { res } = await range(`bytes=${data.length + 10}-`);
          assert.equal(res.status, 416);
          assert.equal(res.headers.get('content-range'), `bytes */${data.length}`);
        });

        test('several ranges are answered with the whole file', async () => {
          const { res, body } = await range('bytes=0-1,5-6');
          assert.equal(res.status, 200);
          assert.equal(sha256(body), info.sha256);
        });
      });
    });

    test('a client leaving mid-download is fine for the next one', async () => {
      const data = pdfLike(20 * MIB);
      const info = await expectJson(await putFile(stack, alice.cookie, data), 201);
      for (let i = 0; i < 5; i++) {
        const ctl = new AbortController();
        const res = await stack.fetch(`/api/files/${info.id}`, {
          headers: { cookie: alice.cookie },
          signal: ctl.signal,
        });
        const reader = res.body.getReader();
        await reader.read();
        ctl.abort();
        await reader.read().catch(() => {});
      }
      const { res, body } = await download(stack, alice.cookie, info.id);
      assert.equal(res.status, 200);
      assert.equal(sha256(body), sha256(data));
    });

    test('the gateway counts the bytes it streamed', async () => {
      const res = await fetch(`${stack.adminUrl}/metrics`);
      const text = await res.text();
      const up = /gateway_file_bytes_total\{direction="upload"\} (\S+)/.exec(text);
      const down = /gateway_file_bytes_total\{direction="download"\} (\S+)/.exec(text);
      assert.ok(up && Number(up[1]) > 50 * MIB, 'upload bytes');
      assert.ok(down && Number(down[1]) > 50 * MIB, 'download bytes');
    });

    // Last: a required consent notice concerns everyone on this stack.
    test('an upload waits for consent like any other work (403 consent_required)', async () => {
      const admin = await createUser(stack, { roles: ['admin'], name: 'Files Admin' });
      const pub = await stack.fetch('/api/admin/consent', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', cookie: admin.cookie },
        body: JSON.stringify({ markdown: '# Consent\n\nWe keep your files.', required: true }),
      });
      assert.ok(pub.status >= 200 && pub.status < 300, `publish consent: ${pub.status} ${await pub.text()}`);
      for (const send of [putFile, postFile]) {
        let res;
        for (let i = 0; i < 20; i++) {
          res = await send(stack, alice.cookie, Buffer.from('after the notice'), { name: 'c.txt' });
          if (res.status !== 201) break;
          await res.arrayBuffer();
          await sleep(100); // the cached session is dropped by a broadcast
        }
        const body = await expectJson(res, 403);
        assert.equal(body.error.code, 'consent_required');
      }
    });
  });
}

if (!haveFilesService()) {
  test('files service', { skip: 'services/files/main.c does not exist yet' }, () => {});
} else {
  fileSuite('local storage');
  if (s3Available()) {
    fileSuite('S3 storage', async () => {
      const s3 = await startS3();
      return {
        env: {
          EJ_FILES_BACKEND: 's3',
          EJ_S3_ENDPOINT: s3.endpoint,
          EJ_S3_BUCKET: 'ej-files',
          EJ_S3_REGION: 'us-east-1',
          EJ_S3_ACCESS_KEY: 'S3RVER',
          EJ_S3_SECRET_KEY: 'S3RVER',
        },
        stop: () => s3.stop(),
      };
    });
  } else {
    test('files on S3', { skip: 'the files service has no S3 backend setting or tests/s3 is not installed' }, () => {});
  }
}
