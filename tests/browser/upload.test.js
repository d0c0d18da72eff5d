'use strict';
// Browser test of the upload widget (gateway/web/upload.js): a signed-in author picks a real
// PDF on /upload, watches the progress bar (role=progressbar, aria-valuenow) reach 100 %, and
// downloads the file back byte-identical; a refused type shows a clear error. No console error
// and no CSP violation on the way.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startStack, signUp } = require('../system/stack.js');

const CHROMIUM = process.env.EJ_CHROMIUM || '/usr/bin/chromium';
const ROOT = path.resolve(__dirname, '..', '..');

let stack;
let browser;

// A small valid PDF (one page with a line of text) padded with a comment stream so the upload
// spans several chunks and the progress bar moves.
function makePdf(padBytes) {
  const objs = [];
  const text = 'BT /F1 24 Tf 72 720 Td (EasyJournal upload test) Tj ET';
  const pad = crypto.randomBytes(padBytes).toString('hex');
  objs.push('<< /Type /Catalog /Pages 2 0 R >>');
  objs.push('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  objs.push('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R ' +
    '/Resources << /Font << /F1 5 0 R >> >> >>');
  objs.push(`<< /Length ${text.length} >>\nstream\n${text}\nendstream`);
  objs.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  objs.push(`<< /Length ${pad.length} >>\nstream\n${pad}\nendstream`);
  let out = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

before(async () => {
  if (!fs.existsSync(path.join(ROOT, 'services', 'files', 'main.c'))) return;
  stack = startStack();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    timeout: 30000,
  });
});

after(async () => {
  if (browser) await browser.close();
  if (stack) stack.stop();
});

async function signedInPage() {
  const user = await signUp(stack);
  const context = await browser.newContext();
  const [name, value] = user.cookie.split('=');
  await context.addCookies([{ name, value, url: stack.url }]);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 415/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.exposeFunction('__ejCsp', (v) => problems.push(`CSP violation: ${v}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__ejCsp(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(stack.url + '/upload', { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
  return { context, page, problems };
}

test('an author uploads a PDF, sees the progress reach 100 %, and downloads it back', { timeout: 120000 }, async (t) => {
  if (!stack) return t.skip('services/files/main.c does not exist yet');
  const { context, page, problems } = await signedInPage();
  try {
    const pdf = makePdf(3 * 1024 * 1024);
    // Record every aria-valuenow the bar takes.
    await page.evaluate(() => {
      window.__ejProgress = [];
      const bar = document.querySelector('[role="progressbar"]');
      new MutationObserver(() => window.__ejProgress.push(Number(bar.getAttribute('aria-valuenow'))))
        .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
    });
    const input = page.getByLabel('Manuscript file');
    await input.setInputFiles({ name: 'paper.pdf', mimeType: 'application/pdf', buffer: pdf });
    const link = page.locator('.upload-done a.upload-link');
    await link.waitFor({ timeout: 60000 });
    const seen = await page.evaluate(() => window.__ejProgress);
    assert.ok(seen.length > 0, 'the bar moved');
    assert.equal(seen[seen.length - 1], 100, `progress ends at 100 (saw ${seen.join(',')})`);
    assert.equal(await page.locator('[role="progressbar"]').getAttribute('aria-valuenow'), '100');
    assert.match(await page.locator('.upload-status').innerText(), /100 %/);
    assert.match(await page.locator('.upload-done').innerText(), /application\/pdf/);

    const href = await link.getAttribute('href');
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = await download.path();
    const back = fs.readFileSync(saved);
    assert.equal(back.length, pdf.length);
    assert.equal(crypto.createHash('sha256').update(back).digest('hex'),
      crypto.createHash('sha256').update(pdf).digest('hex'));
    assert.match(href, /^\/api\/files\/[0-9a-f-]{36}$/);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a refused type shows an error naming the detected type', { timeout: 60000 }, async (t) => {
  if (!stack) return t.skip('services/files/main.c does not exist yet');
  const { context, page, problems } = await signedInPage();
  try {
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
      'base64');
    await page.getByLabel('Manuscript file').setInputFiles({ name: 'paper.pdf', mimeType: 'application/pdf', buffer: png });
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 30000 });
    const text = await alert.innerText();
    assert.match(text, /not accepted/);
    assert.match(text, /image\/png/);
    assert.deepEqual(problems.filter((p) => !/415/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('a file over the limit is refused before it is sent', { timeout: 60000 }, async (t) => {
  if (!stack) return t.skip('services/files/main.c does not exist yet');
  const { context, page } = await signedInPage();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ej-upload-'));
  const huge = path.join(dir, 'huge.pdf');
  try {
    fs.writeFileSync(huge, '%PDF-1.4\n');
    fs.truncateSync(huge, 65 * 1024 * 1024); // sparse: 65 MiB on disk in name only
    await page.getByLabel('Manuscript file').setInputFiles(huge);
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 30000 });
    assert.match(await alert.innerText(), /too large/);
  } finally {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
