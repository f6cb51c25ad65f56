// The convoy dashboard: polls the coordinator's /api every 2 seconds and draws what it says.
// Plain JavaScript and <canvas>, no library: nothing to fetch from elsewhere, nothing to build.
// Every value from the server goes into the page as text (textContent), never as markup.
'use strict';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

function text(value, digits) {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'number' && digits !== undefined) return value.toFixed(digits);
  return String(value);
}
function percent(value) { return value === null || value === undefined ? '–' : (100 * value).toFixed(2) + '%'; }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.round(seconds);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i + 1 < units.length) { n /= 1024; ++i; }
  return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
}
function clock(wallTime) { return wallTime ? new Date(wallTime * 1000).toLocaleString() : '–'; }

// Replaces a table body's rows: one array of cells (text, or {text, className}) per row.
function fillRows(tbody, rows, onRow) {
  tbody.replaceChildren(...rows.map((cells, i) => {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      const td = document.createElement('td');
      if (cell instanceof Node) td.append(cell);
      else if (typeof cell === 'object' && cell !== null) {
        td.textContent = cell.text;
        if (cell.className) td.className = cell.className;
      } else td.textContent = cell;
      tr.append(td);
    }
    if (onRow) onRow(tr, i);
    return tr;
  }));
}

// Round numbers for an axis from lo to hi: about `count` of them.
function ticks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  // At most a few dozen, even where the step is below the numbers' precision.
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) {
    out.push(v);
    if (v + step === v) break;
  }
  return out;
}
function tickLabel(v, time) {
  if (time) return new Date(v * 1000).toLocaleTimeString();
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return v.toExponential(1);
  if (a >= 1000) return Math.round(v).toString();
  return Number(v.toPrecision(3)).toString();
}

// A line chart: `lines` are {x: [], y: [], color}; `points` are {x: [], y: [], color} drawn as
// dots. The canvas records how many values it drew and the last x, for anyone checking it.
function drawChart(canvas, { lines = [], points = [], time = false }) {
  const ratio = window.devicePixelRatio || 1;
  const width = 560, height = 260;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const all = [...lines, ...points];
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, drawn = 0, lastX = null;
  for (const s of all) {
    for (let i = 0; i < s.x.length; ++i) {
      if (s.y[i] === null || !isFinite(s.y[i])) continue;
      x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
      y0 = Math.min(y0, s.y[i]); y1 = Math.max(y1, s.y[i]);
    }
  }
  const left = 56, right = 12, top = 10, bottom = 28;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#6b7380';
  if (!isFinite(x0)) {
    g.fillText('no data yet', width / 2 - 30, height / 2);
    canvas.dataset.points = '0';
    canvas.dataset.lastX = '';
    return;
  }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  if (x1 === x0) { x1 = x0 + 1; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x) => left + (x - x0) / (x1 - x0) * (width - left - right);
  const sy = (y) => height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom);
  g.strokeStyle = '#e3e7ed';
  g.lineWidth = 1;
  g.textAlign = 'right';
  for (const v of ticks(y0, y1, 5)) {
    g.beginPath(); g.moveTo(left, sy(v)); g.lineTo(width - right, sy(v)); g.stroke();
    g.fillText(tickLabel(v, false), left - 4, sy(v) + 4);
  }
  g.textAlign = 'center';
  for (const v of ticks(x0, x1, time ? 4 : 6)) {
    g.fillText(tickLabel(v, time), sx(v), height - bottom + 16);
  }
  g.strokeStyle = '#9aa3b0';
  g.beginPath(); g.moveTo(left, top); g.lineTo(left, height - bottom); g.lineTo(width - right, height - bottom); g.stroke();
  for (const s of lines) {
    g.strokeStyle = s.color; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    for (let i = 0; i < s.x.length; ++i) {
      if (s.y[i] === null || !isFinite(s.y[i])) { pen = false; continue; }
      if (pen) g.lineTo(sx(s.x[i]), sy(s.y[i])); else g.moveTo(sx(s.x[i]), sy(s.y[i]));
      pen = true; ++drawn; lastX = s.x[i];
    }
    g.stroke();
  }
  for (const s of points) {
    g.fillStyle = s.color;
    for (let i = 0; i < s.x.length; ++i) {
      if (s.y[i] === null || !isFinite(s.y[i])) continue;
      g.beginPath(); g.arc(sx(s.x[i]), sy(s.y[i]), 3.5, 0, 2 * Math.PI); g.fill();
      ++drawn;
    }
  }
  canvas.dataset.points = String(drawn);
  canvas.dataset.lastX = lastX === null ? '' : String(lastX);
}

// The job named in the page's address (#job=ID), or null.
function jobInHash() {
  try {
    return decodeURIComponent(location.hash.replace(/^#job=/, '')) || null;
  } catch (error) {
    return null;  // a malformed address: no job chosen
  }
}
let selected = jobInHash();
window.addEventListener('hashchange', () => {
  selected = jobInHash();
  refresh();
});

async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) { location.reload(); throw new Error('signed out'); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showJobs(list) {
  $('no-jobs').hidden = list.jobs.length > 0;
  if (!selected && list.jobs.length > 0) selected = list.jobs[list.jobs.length - 1].job_id;
  fillRows($('jobs').tBodies[0], list.jobs.map((j) => {
    const bar = document.createElement('progress');
    bar.max = 1;
    if (j.progress !== null) bar.value = j.progress;
    return [j.job_id, { text: j.state, className: 'state-' + j.state }, bar,
      j.total_steps ? `${j.step} / ${j.total_steps}` : String(j.step),
      j.state === 'finished' ? 'done' : duration(j.eta_seconds), text(j.images_per_second, 0),
      percent(j.test_accuracy), String(j.restarts)];
  }), (tr, i) => {
    const id = list.jobs[i].job_id;
    tr.dataset.job = id;
    if (id === selected) tr.className = 'selected';
    tr.addEventListener('click', () => { location.hash = 'job=' + encodeURIComponent(id); });
  });
}

function showJob(job) {
  $('job').hidden = false;
  $('job-title').textContent = 'Job ' + job.job_id;
  $('job-summary').textContent = `${job.state}, step ${job.step}` +
    (job.total_steps ? ` of ${job.total_steps}` : '') + `, ${job.world_size} rank(s), ` +
    `${text(job.images_per_second, 0)} images/s, ` +
    (job.state === 'finished' ? 'finished' : `ETA ${duration(job.eta_seconds)}`) +
    `, ${job.records} step records`;
  $('command-line').textContent = job.command_line.length ? job.command_line.join(' ') : '(not reported)';

  const s = job.series;
  const evalSteps = job.evaluations.map((e) => e.step);
  drawChart($('chart-loss'), {
    lines: [{ x: s.step, y: s.loss, color: '#2a62c9' }],
    points: [{ x: evalSteps, y: job.evaluations.map((e) => e.test_loss), color: '#d2572b' }],
  });
  drawChart($('chart-accuracy'), {
    lines: [{ x: s.step, y: s.accuracy, color: '#2a62c9' }],
    points: [{ x: evalSteps, y: job.evaluations.map((e) => e.test_accuracy), color: '#d2572b' }],
  });
  drawChart($('chart-throughput'), { lines: [{ x: s.wall_time, y: s.images_per_second, color: '#207a3c' }], time: true });
  drawChart($('chart-rate'), { lines: [{ x: s.step, y: s.learning_rate, color: '#7a3fb0' }] });

  fillRows($('ranks').tBodies[0], job.ranks.map((r) => [String(r.rank),
    { text: r.state, className: 'state-' + r.state }, r.host, String(r.pid), String(r.step),
    text(r.seconds_since_heartbeat, 1) + ' s ago', text(r.images_per_second, 0),
    percent(r.allreduce_share), String(r.records_dropped)]));

  $('restarts').textContent = job.restarts === 0 ? 'None.' :
    `${job.restarts}; the latest: ` + (job.last_restart
      ? `rank ${job.last_restart.rank} on ${job.last_restart.host || '?'}: ${job.last_restart.cause} (${clock(job.last_restart.wall_time)})`
      : 'unknown');

  fillRows($('checkpoints').tBodies[0], job.checkpoints.map((c) => {
    let name = c.name;
    if (!c.corrupt) {
      name = document.createElement('a');
      name.href = `/api/jobs/${encodeURIComponent(job.job_id)}/checkpoints/${encodeURIComponent(c.name)}`;
      name.download = `${job.job_id}-${c.name}.ckpt`;
      name.textContent = c.name;
    } else {
      name = c.name + ' (corrupt)';
    }
    return [name, String(c.epoch + 1), String(c.step), percent(c.test_accuracy), bytes(c.size),
      clock(c.stored_time), c.sha256.slice(0, 12)];
  }));

  const e = job.evaluation;
  $('evaluation-title').textContent = e
    ? `Latest evaluation: epoch ${e.epoch + 1}, step ${e.step}, test accuracy ${percent(e.test_accuracy)}, loss ${text(e.test_loss, 4)}`
    : 'No evaluation yet';
  fillRows($('per-class').tBodies[0], e ? e.per_class.map((c) => [String(c.class),
    text(c.precision, 4), text(c.recall, 4), text(c.f1, 4)]) : []);
  const heat = $('confusion').tBodies[0];
  if (!e || e.confusion.length === 0) { heat.replaceChildren(); return; }
  const top = Math.max(1, ...e.confusion.map((row) => Math.max(...row)));
  const header = document.createElement('tr');
  header.append(document.createElement('th'));
  e.confusion.forEach((_, p) => { const th = document.createElement('th'); th.textContent = p; header.append(th); });
  heat.replaceChildren(header, ...e.confusion.map((row, t) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th'); th.textContent = t; tr.append(th);
    row.forEach((count, p) => {
      const td = document.createElement('td');
      td.textContent = count;
      td.title = `true ${t}, predicted ${p}: ${count}`;
      const share = Math.sqrt(count / top);  // the square root keeps small errors visible
      td.style.background = t === p ? `rgba(32,122,60,${share})` : `rgba(210,87,43,${share})`;
      td.style.color = share > 0.6 ? '#fff' : '#1d2430';
      tr.append(td);
    });
    return tr;
  }));
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const list = await getJson('/api/jobs');
    showJobs(list);
    if (selected && list.jobs.some((j) => j.job_id === selected)) {
      showJob(await getJson('/api/jobs/' + encodeURIComponent(selected)));
    } else {
      $('job').hidden = true;
    }
    $('problem').hidden = true;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    $('problem').hidden = false;
    $('problem').textContent = 'Cannot reach the coordinator: ' + error.message;
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
