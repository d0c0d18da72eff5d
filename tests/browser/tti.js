'use strict';
// Time to interactive of the browser app, before and after a change, measured in one run:
//   node tests/browser/tti.js URL_A URL_B [ROUNDS]
// Loads each start page ROUNDS times (10), alternating A and B, each in a fresh browser context
// (a cold cache, as a first visit), and prints the median time from navigation start until the
// page's first heading is drawn inside <main> (the moment the app has rendered its first page)
// and first contentful paint. Not part of `make test`: a measurement, not a timed test.
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.EJ_CHROMIUM || '/usr/bin/chromium';

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function once(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(url, { waitUntil: 'commit' });
    await page.waitForFunction(() => document.querySelector('main h1, main h2'), null, { polling: 'raf', timeout: 15000 });
    return await page.evaluate(() => ({
      ready: performance.now(),
      fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0,
      requests: performance.getEntriesByType('resource').length + 1,
    }));
  } finally {
    await context.close();
  }
}

async function main() {
  const [a, b, roundsArg] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write('usage: node tests/browser/tti.js URL_A URL_B [ROUNDS]\n');
    process.exit(2);
  }
  const rounds = Number(roundsArg || 10);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const res = { A: [], B: [] };
  try {
    await once(browser, a); // warm the servers, not the browser (each load has a fresh context)
    await once(browser, b);
    for (let i = 0; i < rounds; i++) {
      res.A.push(await once(browser, a));
      res.B.push(await once(browser, b));
    }
  } finally {
    await browser.close();
  }
  for (const [k, url] of [['A', a], ['B', b]]) {
    const r = res[k];
    process.stdout.write(`${k} ${url}: ready ${median(r.map((x) => x.ready)).toFixed(0)} ms, ` +
      `first paint ${median(r.map((x) => x.fcp)).toFixed(0)} ms, ${r[0].requests} requests\n`);
  }
  const ra = median(res.A.map((x) => x.ready));
  const rb = median(res.B.map((x) => x.ready));
  process.stdout.write(`ratio B/A (ready): ${(rb / ra).toFixed(2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
