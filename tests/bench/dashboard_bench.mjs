// The dashboard and /metrics under load, measured (prints one JSON line):
//   - a `convoy coordinator --http-listen` with a token, fed by coordinator_bench --feed: a job of
//     64 ranks with 100,000 step records (and an evaluation every 100 steps), then the 64 ranks
//     live at 20 Hz;
//   - the dashboard opened in Debian's chromium on that job: bytes transferred for the page and its
//     first data, first paint and first contentful paint, time until the charts are drawn;
//   - /metrics scrape time (median and max of 20, with the token), under that load and idle;
//   - the coordinator's CPU (user + system, share of one core) over 30 s of that load with the
//     dashboard open and polling, and its resident memory.
//
//   node tests/bench/dashboard_bench.mjs build   (the build directory)
import { chromium } from '../browser/node_modules/playwright-core/index.mjs';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const build = process.argv[2] || 'build';
const convoy = path.join(build, 'launcher/convoy');
const feeder = path.join(build, 'tests/bench/coordinator_bench');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime + stime, in clock ticks
};
const rssMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const dir = mkdtempSync(path.join(tmpdir(), 'convoy-dashboard-bench-'));
const token = 'bench-token';
writeFileSync(path.join(dir, 'token'), token);
const [grpcPort, httpPort] = [await freePort(), await freePort()];
const coordinator = spawn(convoy, ['coordinator', '--listen', `127.0.0.1:${grpcPort}`, '--http-listen',
  `127.0.0.1:${httpPort}`, '--state-dir', path.join(dir, 'state'), '--auth-token-file', path.join(dir, 'token')],
{ stdio: 'ignore' });
let feed = null, browser = null;
const result = {};
try {
  await sleep(1000);
  const base = `http://127.0.0.1:${httpPort}`;
  const auth = { headers: { Authorization: `Bearer ${token}` } };
  feed = spawn(feeder, ['--feed', `127.0.0.1:${grpcPort}`, '--token-file', path.join(dir, 'token'), '--job',
    'dashboard', '--preload', '100000', '--workers', '64', '--hz', '20', '--seconds', '75'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let feedOut = '';
  feed.stdout.on('data', (d) => { feedOut += d; });
  const fed = new Promise((resolve) => feed.on('exit', resolve));
  for (let records = 0; records < 100000;) {
    await sleep(250);
    const r = await fetch(`${base}/api/jobs`, auth).then((x) => x.json()).catch(() => ({ jobs: [] }));
    records = r.jobs[0]?.records ?? 0;
  }
  await sleep(3000);  // the live phase is on

  browser = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium',
    args: process.getuid() === 0 ? ['--no-sandbox'] : [] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const signin = await context.newPage();
  await signin.goto(`${base}/`);  // the sign-in form
  await signin.fill('input[name=token]', token);
  await Promise.all([signin.waitForNavigation(), signin.click('button[type=submit]')]);
  await signin.close();
  // A fresh load of the job's page in a new tab (the session cookie only), measured.
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${base}/#job=dashboard`);
  await page.waitForFunction(() => Number(document.getElementById('chart-loss').dataset.points) > 0);
  const drawn = Date.now() - t0;
  const timing = await page.evaluate(() => {
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
    const nav = performance.getEntriesByType('navigation')[0];
    const resources = performance.getEntriesByType('resource');
    const size = (e) => e.decodedBodySize;
    const api = (e) => new URL(e.name).pathname.startsWith('/api/');
    return {
      page_bytes: size(nav) + resources.filter((e) => !api(e)).reduce((s, e) => s + size(e), 0),
      // The first answers: the job list and the job (the page asks again every 2 s).
      first_data_bytes: resources.filter(api).slice(0, 2).reduce((s, e) => s + size(e), 0),
      first_paint_ms: paint['first-paint'], first_contentful_paint_ms: paint['first-contentful-paint'],
      dom_content_loaded_ms: nav.domContentLoadedEventEnd,
      chart_points: Number(document.getElementById('chart-loss').dataset.points),
    };
  });
  result.dashboard = { records: 100000, ...timing, charts_drawn_ms: drawn };

  // The coordinator's CPU over 30 s: 64 ranks at 20 Hz, the dashboard polling every 2 s.
  const cpu0 = cpuSeconds(coordinator.pid), wall0 = Date.now();
  await sleep(30000);
  const cpu = (cpuSeconds(coordinator.pid) - cpu0) / ((Date.now() - wall0) / 1000);
  result.coordinator = { cpu_share_of_one_core: Number(cpu.toFixed(3)), rss_mb: Number(rssMb(coordinator.pid).toFixed(1)),
    load: '64 ranks x 20 Hz, dashboard open' };

  // /metrics scrape time: under that load, and once the workers have stopped.
  const scrape = async () => {
    const scrapes = [];
    let bytes = 0;
    for (let i = 0; i < 20; ++i) {
      const s = performance.now();
      bytes = (await fetch(`${base}/metrics`, auth).then((x) => x.text())).length;
      scrapes.push(performance.now() - s);
    }
    return { median_ms: Number(median(scrapes).toFixed(2)), max_ms: Number(Math.max(...scrapes).toFixed(2)), bytes };
  };
  result.metrics_scrape_under_load = await scrape();
  await browser.close();
  browser = null;
  await fed;
  result.metrics_scrape_idle = await scrape();
  result.feed = JSON.parse(feedOut.trim().split('\n').pop());
  console.log(JSON.stringify(result));
} finally {
  if (browser) await browser.close();
  if (feed && feed.exitCode === null) feed.kill('SIGKILL');
  coordinator.kill('SIGTERM');
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
}
