// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core over the
// DevTools protocol, against a coordinator that a training job is reporting to.
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:PORT --token-file F --job ID \
//        --ranks N --screenshot OUT.png
//
// Checks, in order: the page asks for the token (and refuses a wrong one); after signing in, the
// job's rank table lists every rank; the loss chart has points and they reach further as steps
// advance; the command line is shown; a checkpoint downloads through its link with the session
// alone; no console errors or CSP violations while signed in; signing out ends the session.
// Prints one JSON line of what it saw; exits 1 with the reason on the first failed check.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const required of ['url', 'token-file', 'job', 'ranks', 'screenshot']) {
  if (!args[required]) { console.error(`dashboard.mjs: --${required} is required`); process.exit(2); }
}
const token = readFileSync(args['token-file'], 'utf8').trim();
const ranks = Number(args.ranks);
const POLL_WAIT_MS = 2100;  // the page refreshes every 2 s

function check(condition, message) {
  if (!condition) throw new Error(message);
}
async function until(what, probe, seconds = 90) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
  // Root (as in CI) cannot use chromium's sandbox.
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
const seen = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  let signedIn = false;
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error' && signedIn) errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  // 1. Without the token: the sign-in form, and a wrong token keeps it there.
  const first = await page.goto(args.url + '/');
  check(first.status() === 401, `GET / without a token answered ${first.status()}, expected 401`);
  check(await page.locator('input[name=token]').count() === 1, 'no sign-in form without a token');
  await page.fill('input[name=token]', token + '-wrong');
  const refused = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(refused[0].status() === 401, 'a wrong token was not refused');
  check(await page.locator('input[name=token]').count() === 1, 'no sign-in form after a wrong token');

  // 2. The right token: the dashboard, with the job and all its ranks.
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  signedIn = true;
  await page.goto(`${args.url}/#job=${encodeURIComponent(args.job)}`);
  await until('the job in the list', async () =>
    (await page.locator(`#jobs tbody tr[data-job="${args.job}"]`).count()) === 1);
  const rows = await until(`${ranks} rank rows`, async () => {
    const r = await page.locator('#ranks tbody tr').allTextContents();
    return r.length === ranks && r.every((t) => t.includes('alive')) ? r : null;
  });
  seen.rank_rows = rows.length;

  // 3. The loss chart has points, and reaches further as the job steps on.
  const chart = page.locator('#chart-loss');
  const before = await until('points in the loss chart', async () => {
    const n = Number(await chart.getAttribute('data-points'));
    return n > 0 ? { points: n, last: Number(await chart.getAttribute('data-last-x')) } : null;
  });
  const after = await until('the loss chart to grow', async () => {
    const last = Number(await chart.getAttribute('data-last-x'));
    return last > before.last ? { points: Number(await chart.getAttribute('data-points')), last } : null;
  });
  seen.chart = { before, after };

  // 4. The command line, the evaluation's confusion matrix, a checkpoint through its link.
  const command = await page.locator('#command-line').textContent();
  check(command.includes(' train ') && command.includes(args.job), `command line shown: ${command}`);
  await until('a confusion matrix', async () => (await page.locator('#confusion td').count()) > 0);
  // The newest link; retention may retire a listed checkpoint before it is fetched (the job keeps
  // storing new ones): then the list is read again.
  let link, download;
  for (let attempt = 0; attempt < 10; ++attempt) {
    link = await until('a checkpoint link', async () => {
      const a = page.locator('#checkpoints a').last();
      return (await a.count()) > 0 ? a.getAttribute('href') : null;
    });
    download = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return { status: r.status, bytes: (await r.arrayBuffer()).byteLength };
    }, link);
    if (download.status !== 404) break;
    await new Promise((r) => setTimeout(r, POLL_WAIT_MS));
  }
  check(download.status === 200 && download.bytes > 0, `checkpoint download: ${JSON.stringify(download)}`);
  seen.checkpoint = { link, ...download };

  await page.screenshot({ path: args.screenshot, fullPage: true });
  check(errors.length === 0, `console errors: ${errors.join(' | ')}`);

  // 5. Signing out ends the session: the data is refused again.
  signedIn = false;
  await Promise.all([page.waitForNavigation(), page.click('header button[type=submit]')]);
  check(await page.locator('input[name=token]').count() === 1, 'no sign-in form after signing out');
  const status = await page.evaluate(async () => (await fetch('/api/jobs')).status);
  check(status === 401, `/api/jobs after signing out answered ${status}`);
  seen.signed_out = true;
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(`dashboard.mjs: ${error.message}; saw ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
