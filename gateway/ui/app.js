// Sluice admin dashboard: fills the server-rendered pages from the JSON API
// under /ui/api. Plain ES2020, no dependencies, no build step.
//
// Server data reaches the DOM only as text (textContent, text nodes,
// attributes set one by one), never as HTML, so a route name or a model's
// output containing markup is shown, not run.
'use strict';

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';
const NONE = '–';
const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ONE = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const SVG_NS = 'http://www.w3.org/2000/svg';

const $ = (sel, root = document) => root.querySelector(sel);
const byId = (...ids) => ids.map((id) => document.getElementById(id));

// AuthRedirect is thrown after a 401 has sent the browser to the login page;
// callers drop it silently.
class AuthRedirect extends Error {}

// ApiError is a non-2xx answer from /ui/api, with the sluice error code.
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    Object.assign(this, { status, code });
  }
}

const goLogin = () => location.assign('/ui/login');

// api calls a /ui/api endpoint and returns its decoded JSON body. A POST
// carries the CSRF token and, if body is given, a JSON body.
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = CSRF;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    goLogin();
    throw new AuthRedirect('unauthenticated');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || '', e.message || `the server answered HTTP ${res.status}`);
  }
  return data;
}

function describeError(err) {
  if (err instanceof ApiError) return err.code ? `${err.code}: ${err.message}` : err.message;
  return 'the server could not be reached';
}

// notify shows a one-line message in the page's status line ('' clears it).
function notify(msg) {
  const n = $('#notice');
  if (n && n.textContent !== msg) n.textContent = msg;
}

function reportError(what, err) {
  if (err instanceof AuthRedirect || err?.name === 'AbortError') return;
  notify(`${what}: ${describeError(err)}.`);
}

// el builds an element. Attributes are set one by one; children are nodes or
// strings (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

// Formatting. Every function takes null for "no value".
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const fmtInt = (v) => (isNum(v) ? INT.format(v) : NONE);
const fmtMs = (v) => (isNum(v) ? `${ONE.format(v)} ms` : NONE);
const fmtUSD = (v) => (isNum(v) ? `$${v.toFixed(4)}` : NONE);
const fmtRps = (v) => (isNum(v) ? `${v.toFixed(2)}/s` : NONE);
function fmtPct(rate) {
  if (!isNum(rate)) return NONE;
  const p = rate * 100;
  if (p > 0 && p < 0.1) return '<0.1%';
  return `${p.toFixed(1)}%`;
}
const fmtLimit = (v) => (isNum(v) && v > 0 ? fmtInt(v) : 'no limit');
function fmtDuration(s) {
  if (!isNum(s)) return NONE;
  if (s >= 3600 && s % 3600 === 0) return s === 3600 ? 'hour' : `${s / 3600} hours`;
  if (s >= 60) return `${Math.round(s / 60)} min`;
  return `${Math.round(s)} s`;
}
function parseDate(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}
const pad = (n, w = 2) => String(n).padStart(w, '0');
// fmtClock formats d as local HH:MM[:SS[.mmm]].
function fmtClock(d, { seconds = true, ms = false } = {}) {
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (seconds) s += `:${pad(d.getSeconds())}`;
  if (ms) s += `.${pad(d.getMilliseconds(), 3)}`;
  return s;
}
// fmtDateTime formats an RFC 3339 time as local YYYY-MM-DD HH:MM:SS.
function fmtDateTime(s) {
  const d = parseDate(s);
  if (!d) return s || NONE;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(d)}`;
}
function parseJSON(s) {
  try { return JSON.parse(s); } catch { return undefined; }
}
function fmtJSON(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

// poll runs fn now and then every ms milliseconds after the previous run
// ended, skipping runs while the tab is hidden.
function poll(fn, ms) {
  let timer = 0;
  let busy = false;
  const run = async () => {
    clearTimeout(timer);
    if (busy) return;
    busy = true;
    try {
      if (!document.hidden) await fn();
    } finally {
      busy = false;
      timer = setTimeout(run, ms);
    }
  };
  document.addEventListener('visibilitychange', () => document.hidden || run());
  run();
}

// fillTable replaces the body rows of table: one row per item, one cell per
// column (a column is {get(item) → string|Node, num: bool}).
function fillTable(table, items, cols, emptyText) {
  const tbody = table.tBodies[0] || table.createTBody();
  const frag = document.createDocumentFragment();
  if (!items.length) {
    frag.append(el('tr', { class: 'empty' }, el('td', { colspan: cols.length }, emptyText)));
  }
  for (const it of items) {
    frag.append(el('tr', null, cols.map((c) => el('td', { class: c.num ? 'num' : null }, c.get(it)))));
  }
  tbody.replaceChildren(frag);
}

// ---------------------------------------------------------------- overview

function pageOverview() {
  let last = null;
  let frame = 0;
  // The charts are drawn at their pixel size: redraw them when it changes.
  addEventListener('resize', () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => last && renderOverview(last));
  });
  poll(async () => {
    try {
      last = await api('/ui/api/overview');
      renderOverview(last);
      notify('');
    } catch (e) {
      reportError('Could not load the overview', e);
    }
  }, 5000);
}

function renderOverview(d) {
  const noData = (v, f) => (v == null ? 'no data' : f(v));
  const lat = d.latency_ms || {};
  const ttft = d.ttft_ms || {};
  const stats = {
    requests: fmtInt(d.requests),
    rps: fmtRps(d.rps),
    error_rate: fmtPct(d.error_rate),
    latency_p50: noData(lat.p50, fmtMs),
    latency_p95: noData(lat.p95, fmtMs),
    latency_p99: noData(lat.p99, fmtMs),
    ttft_p50: noData(ttft.p50, fmtMs),
    ttft_p95: noData(ttft.p95, fmtMs),
    ttft_p99: noData(ttft.p99, fmtMs),
    cost: fmtUSD(d.cost_usd),
    schema_failures: noData(d.schema_failures_per_1000, (v) => ONE.format(v)),
    open_streams: fmtInt(d.open_streams),
    retries: fmtInt(d.retries),
    fallbacks: fmtInt(d.fallbacks),
  };
  for (const [k, v] of Object.entries(stats)) {
    const n = $(`.stat[data-stat="${k}"] .value`);
    if (n) n.textContent = v;
  }
  const tokens = d.tokens || {};
  $('#tokens-input').textContent = fmtInt(tokens.input);
  $('#tokens-output').textContent = fmtInt(tokens.output);
  $('#hedges').textContent = fmtInt(d.hedges);

  const since = parseDate(d.since);
  $('#overview-window').textContent =
    `Figures for the last ${fmtDuration(d.window_seconds)}` +
    (since ? ` (since ${fmtDateTime(d.since)})` : '') +
    `. Updated ${fmtClock(new Date())}; refreshes every 5 s.`;

  const s = d.series || {};
  const t = s.t || [];
  drawChart($('#chart-rps'), t, s.rps || [], 'Requests per second', fmtRps);
  drawChart($('#chart-errors'), t, s.error_rate || [], 'Error rate', fmtPct);
  drawChart($('#chart-latency'), t, s.p95_ms || [], 'Latency p95', (v) => `${INT.format(v)} ms`);

  const usage = [
    { num: true, get: (r) => fmtInt(r.requests) },
    { num: true, get: (r) => fmtInt(r.input_tokens) },
    { num: true, get: (r) => fmtInt(r.output_tokens) },
    { num: true, get: (r) => fmtUSD(r.cost_usd) },
  ];
  fillTable($('#by-model'), d.by_model || [], [{ get: (r) => r.model || NONE }, ...usage], 'No calls in the last hour.');
  fillTable($('#by-key'), d.by_key || [], [
    { get: (r) => r.name || '(unnamed)' },
    { get: (r) => el('code', null, r.key_id || NONE) },
    ...usage,
  ], 'No calls in the last hour.');
  const errs = Object.entries(d.errors || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  fillTable($('#errors-by-code'), errs, [
    { get: (e) => e[0] },
    { num: true, get: (e) => fmtInt(e[1]) },
  ], 'No errors.');
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

// drawChart draws ys over ts (unix seconds) as a line chart into svg, with
// the value axis starting at zero. Null values break the line. It sets
// data-points to the number of points drawn and describes the latest and
// peak values in the title and aria-label.
function drawChart(svg, ts, ys, label, fmt) {
  if (!svg) return;
  // Draw at the svg's own pixel size, so its text stays 12px at any width.
  const W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 480);
  const H = 180, L = 64, R = 10, T = 12, B = 26;
  const idx = [];
  for (let i = 0; i < ys.length; i++) if (isNum(ys[i])) idx.push(i);
  const peak = idx.reduce((m, i) => Math.max(m, ys[i]), 0);
  const top = niceMax(peak);
  const time = (i) => (isNum(ts[i]) ? ts[i] : i);
  const t0 = time(0);
  const t1 = time(ys.length - 1);
  const x = (i) => (t1 > t0 ? L + ((time(i) - t0) / (t1 - t0)) * (W - L - R) : (L + W - R) / 2);
  const y = (v) => T + (1 - v / top) * (H - T - B);

  const desc = idx.length
    ? `${label} over the last hour: latest ${fmt(ys[idx[idx.length - 1]])}, peak ${fmt(peak)}`
    : `${label} over the last hour: no data yet`;
  const title = svgEl('title', null, desc);
  const parts = [
    title,
    svgEl('line', { class: 'grid', x1: L, y1: T, x2: W - R, y2: T }),
    svgEl('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svgEl('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
    svgEl('text', { class: 'tick', x: L - 6, y: T + 4, 'text-anchor': 'end' }, fmt(top)),
    svgEl('text', { class: 'tick', x: L - 6, y: H - B + 4, 'text-anchor': 'end' }, fmt(0)),
  ];
  if (ys.length && isNum(ts[0])) {
    const clock = (i) => fmtClock(new Date(ts[i] * 1000), { seconds: false });
    parts.push(svgEl('text', { class: 'tick', x: L, y: H - 6, 'text-anchor': 'start' }, clock(0)));
    if (ys.length > 1 && isNum(ts[ys.length - 1])) {
      parts.push(svgEl('text', { class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end' }, clock(ys.length - 1)));
    }
  }
  let path = '';
  let prev = -2;
  for (const i of idx) {
    path += `${i === prev + 1 ? 'L' : 'M'}${x(i).toFixed(1)} ${y(ys[i]).toFixed(1)}`;
    const alone = i !== prev + 1 && !isNum(ys[i + 1]);
    if (alone) parts.push(svgEl('circle', { class: 'dot', cx: x(i).toFixed(1), cy: y(ys[i]).toFixed(1), r: 2.5 }));
    prev = i;
  }
  if (path) parts.push(svgEl('path', { class: 'line', d: path }));
  svg.replaceChildren(...parts);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('aria-label', desc);
  svg.dataset.points = String(idx.length);
}

// ---------------------------------------------------------------- requests

const MAX_ROWS = 500;

// A row without a code (or with "ok") succeeded, as the server's filter has it.
const isOK = (r) => !r.code || r.code === 'ok';
const statusText = (r) => `${r.status ?? NONE} ${r.code || 'ok'}`;

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function attemptsText(r) {
  const extra = [];
  if (r.retries) extra.push(plural(r.retries, 'retry', 'retries'));
  if (r.fallbacks) extra.push(plural(r.fallbacks, 'fallback', 'fallbacks'));
  if (r.hedges) extra.push(plural(r.hedges, 'hedge', 'hedges'));
  return `${r.attempts ?? NONE}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

function requestRow(r) {
  const d = parseDate(r.time);
  const clock = d ? fmtClock(d, { ms: true }) : NONE;
  return el('tr', { class: 'request-row', tabindex: 0, 'data-id': r.id, 'data-ok': String(isOK(r)) },
    el('td', null, el('time', { datetime: r.time || null, title: fmtDateTime(r.time) }, clock)),
    el('td', { title: r.key_id || null }, r.key_name || r.key_id || NONE),
    el('td', null, r.route || NONE),
    el('td', null, r.model || NONE),
    el('td', null, r.provider || NONE),
    el('td', { class: 'status' }, statusText(r)),
    el('td', { class: 'num' }, fmtMs(r.latency_ms)),
    el('td', { class: 'num' }, fmtMs(r.ttft_ms)),
    el('td', { class: 'num' }, `${fmtInt(r.input_tokens)} / ${fmtInt(r.output_tokens)}`),
    el('td', { class: 'num' }, fmtUSD(r.cost_usd)),
    el('td', { class: 'num' }, attemptsText(r)),
    el('td', null, r.outcome || NONE));
}

function pageRequests() {
  const [form, fRoute, fStatus, fKey, table, live] =
    byId('request-filters', 'filter-route', 'filter-status', 'filter-key', 'requests-table', 'requests-live');
  const tbody = table.tBodies[0];
  const seen = new Set();
  let active = {};
  let loading = false;
  let loadSeq = 0;
  let pending = []; // stream rows that arrived during a load

  const q = new URLSearchParams(location.search);
  fRoute.value = q.get('route') || '';
  fStatus.value = ['ok', 'error'].includes(q.get('status')) ? q.get('status') : 'all';
  fKey.value = q.get('key') || '';

  function matches(r) {
    if (active.route && r.route !== active.route) return false;
    if (active.key && r.key_id !== active.key) return false;
    if (active.status === 'ok' && !isOK(r)) return false;
    if (active.status === 'error' && isOK(r)) return false;
    return true;
  }

  function showEmpty() {
    if (!tbody.rows.length) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 12 }, 'No requests match yet.')));
    }
  }

  function prepend(r) {
    if (!r || !r.id || seen.has(r.id) || !matches(r)) return;
    tbody.querySelector('tr.empty')?.remove();
    seen.add(r.id);
    tbody.prepend(requestRow(r));
    while (tbody.rows.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      seen.delete(last.dataset.id);
      last.remove();
    }
  }

  async function load() {
    active = { route: fRoute.value.trim(), status: fStatus.value, key: fKey.value.trim() };
    const p = new URLSearchParams();
    if (active.route) p.set('route', active.route);
    if (active.status !== 'all') p.set('status', active.status);
    if (active.key) p.set('key', active.key);
    history.replaceState(null, '', p.toString() ? `?${p}` : location.pathname);
    p.set('limit', '100');
    const mine = ++loadSeq;
    loading = true;
    try {
      const data = await api(`/ui/api/requests?${p}`);
      if (mine !== loadSeq) return; // a newer load replaced this one
      seen.clear();
      tbody.replaceChildren();
      for (const r of data.requests || []) {
        if (!r.id || seen.has(r.id)) continue;
        seen.add(r.id);
        tbody.append(requestRow(r));
      }
      showEmpty();
      notify('');
    } finally {
      if (mine === loadSeq) {
        loading = false;
        pending.splice(0).forEach(prepend);
      }
    }
  }

  function connect() {
    const es = new EventSource('/ui/api/requests/stream');
    es.addEventListener('open', () => {
      live.textContent = 'Live: new requests appear at the top.';
    });
    es.addEventListener('request', (ev) => {
      const r = parseJSON(ev.data);
      if (loading) pending.push(r);
      else prepend(r);
    });
    es.addEventListener('error', () => {
      if (es.readyState !== EventSource.CLOSED) {
        live.textContent = 'Live updates interrupted; reconnecting…';
        return;
      }
      // Closed for good (a refused or failed connection): reload, which
      // also finds out whether the session ended, then try again.
      es.close();
      live.textContent = 'Live updates stopped; retrying in 5 s…';
      setTimeout(async () => {
        try {
          await load();
        } catch (e) {
          if (e instanceof AuthRedirect) return;
        }
        connect();
      }, 5000);
    });
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load().catch((e) => reportError('Could not load requests', e));
  });
  fStatus.addEventListener('change', () => {
    load().catch((e) => reportError('Could not load requests', e));
  });

  const detail = requestDetail(table);
  tbody.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.request-row');
    if (tr) detail.open(tr);
  });
  tbody.addEventListener('keydown', (ev) => {
    const tr = ev.target.closest('tr.request-row');
    if (!tr || ev.target !== tr) return;
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      detail.open(tr);
    }
  });

  // Open the stream before the first load so no call ends unseen between
  // the two; rows that arrive meanwhile wait in pending.
  loading = true;
  connect();
  load().catch((e) => reportError('Could not load requests', e));
}

// requestDetail manages section#request-detail for the rows of table.
function requestDetail(table) {
  const [sec, title, summary, attempts, content] =
    byId('request-detail', 'request-detail-title', 'request-summary', 'attempts-table', 'request-content');
  let row = null;
  let seq = 0;

  function close() {
    sec.hidden = true;
    table.querySelectorAll('tr[aria-current]').forEach((tr) => tr.removeAttribute('aria-current'));
    if (row && row.isConnected) row.focus();
    else (table.querySelector('tr.request-row') || table).focus();
  }
  $('#request-detail-close').addEventListener('click', close);
  sec.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') close();
  });

  async function open(tr) {
    const id = tr.dataset.id;
    const mine = ++seq;
    let d;
    try {
      d = await api(`/ui/api/requests/${encodeURIComponent(id)}`);
    } catch (e) {
      reportError('Could not load the request', e);
      return;
    }
    if (mine !== seq) return;
    row = tr;
    table.querySelectorAll('tr[aria-current]').forEach((r) => r.removeAttribute('aria-current'));
    tr.setAttribute('aria-current', 'true');
    title.textContent = `Request ${d.id || id}`;

    const pairs = [
      ['Time', fmtDateTime(d.time)],
      ['Key', d.key_name ? `${d.key_name} (${d.key_id})` : d.key_id || NONE],
      ['Tenant', d.tenant || NONE],
      ['Route', d.route || NONE],
      ['Model', d.model || NONE],
      ['Provider', d.provider || NONE],
      ['Streamed', d.stream ? 'yes' : 'no'],
      ['Status', statusText(d)],
      ['Latency', fmtMs(d.latency_ms)],
      ['Time to first token', fmtMs(d.ttft_ms)],
      ['Tokens', `${fmtInt(d.input_tokens)} in / ${fmtInt(d.output_tokens)} out`],
      ['Cost', fmtUSD(d.cost_usd)],
      ['Attempts', attemptsText(d)],
      ['Outcome', d.outcome || NONE],
    ];
    summary.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));

    const list = d.attempts_detail || [];
    fillTable(attempts, list.map((a, i) => ({ ...a, n: i + 1 })), [
      { num: true, get: (a) => String(a.n) },
      { get: (a) => a.kind || NONE },
      { get: (a) => a.provider || NONE },
      { get: (a) => a.model || NONE },
      { get: (a) => a.outcome || NONE },
      { num: true, get: (a) => fmtMs(a.duration_ms) },
      { num: true, get: (a) => fmtMs(a.wait_ms) },
    ], 'No attempt details recorded.');

    const blocks = [];
    for (const [key, label] of [['prompt', 'Prompt'], ['completion', 'Completion']]) {
      if (d[key] == null || d[key] === '') continue;
      blocks.push(el('h3', null, label), el('pre', { tabindex: 0, 'aria-label': label }, fmtJSON(d[key])));
    }
    content.replaceChildren(...blocks);

    sec.hidden = false;
    title.focus();
  }

  return { open };
}

// ---------------------------------------------------------------- keys

function pageKeys() {
  const [form, tier, submit, formError, box, secret, copied] =
    byId('create-key', 'key-tier', 'create-key-submit', 'create-key-error', 'new-key', 'new-key-secret', 'new-key-copied');
  const tbody = $('#keys-table').tBodies[0];
  let tierList = null;

  function renderTiers(tiers) {
    const key = JSON.stringify(tiers);
    if (key === tierList) return;
    tierList = key;
    const keep = tier.value;
    tier.replaceChildren(...(tiers.length
      ? tiers.map((t) => el('option', { value: t }, t))
      : [el('option', { value: '' }, '(default)')]));
    if (tiers.includes(keep)) tier.value = keep;
  }

  function spend(v, budget) {
    return isNum(budget) && budget > 0 ? `${fmtUSD(v)} of ${fmtUSD(budget)}` : fmtUSD(v);
  }

  // headroomText is the tier's limit, and what its last call on this
  // instance had left of the tightest limit that applied to it (route,
  // tier, user or address: the x-ratelimit-* headers of that call).
  function headroomText(limit, h, what) {
    const tier = fmtLimit(limit);
    if (!h || !isNum(h[`${what}_remaining`]) || !h[`${what}_limit`]) return tier;
    return `${tier}; ${fmtInt(h[`${what}_remaining`])} could go at once at ${fmtDateTime(h.as_of)} (limit applied: ${fmtInt(h[`${what}_limit`])})`;
  }

  function keyRow(k) {
    const name = k.name || k.id;
    const status = k.disabled || k.active === false ? 'disabled' : 'active';
    return el('tr', { class: 'key-row', 'data-id': k.id, 'data-name': name, 'data-status': status },
      el('td', null, k.name || NONE),
      el('td', null, el('code', null, k.id)),
      el('td', null, k.tenant || NONE),
      el('td', null, k.tier || NONE),
      el('td', null, k.user || NONE),
      el('td', { class: 'key-status' }, status),
      el('td', null, k.created ? fmtDateTime(k.created) : NONE),
      el('td', { class: 'num' }, spend(k.spend_today_usd, k.daily_budget_usd)),
      el('td', { class: 'num' }, spend(k.spend_month_usd, k.monthly_budget_usd)),
      el('td', { class: 'num' }, headroomText(k.rpm, k.headroom, 'requests')),
      el('td', { class: 'num' }, headroomText(k.tpm, k.headroom, 'tokens')),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'key-disable', disabled: status === 'disabled', 'aria-label': `Disable key ${name}` }, 'Disable'),
        ' ',
        el('button', { type: 'button', class: 'key-rotate', 'aria-label': `Rotate key ${name}` }, 'Rotate')));
  }

  async function load() {
    const d = await api('/ui/api/keys');
    renderTiers(d.tiers || []);
    const keys = d.keys || [];
    tbody.replaceChildren(...(keys.length ? keys.map(keyRow)
      : [el('tr', { class: 'empty' }, el('td', { colspan: 12 }, 'No keys yet: create one below.'))]));
    notify('');
  }
  const reload = () => load().catch((e) => reportError('Could not load keys', e));

  function showSecret(value, label) {
    $('#new-key-label').textContent = label;
    secret.textContent = value || '';
    copied.textContent = '';
    box.hidden = false;
    $('#new-key-copy').focus();
  }

  $('#new-key-copy').addEventListener('click', async () => {
    const text = secret.textContent;
    const ok = await navigator.clipboard?.writeText(text).then(() => true, () => false);
    if (ok) {
      copied.textContent = 'Copied.';
      return;
    }
    // No clipboard API (plain HTTP other than localhost): select the text.
    getSelection().selectAllChildren(secret);
    copied.textContent = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
  });
  $('#new-key-dismiss').addEventListener('click', () => {
    secret.textContent = '';
    box.hidden = true;
    $('#key-name').focus();
  });

  tbody.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button');
    const tr = b && b.closest('tr.key-row');
    if (!tr) return;
    const { id, name } = tr.dataset;
    const act = ['disable', 'rotate'].find((a) => b.classList.contains(`key-${a}`));
    if (!act) return;
    if (act === 'disable' && !confirm(`Disable key "${name}" (${id})? Calls made with it will be refused.`)) return;
    b.disabled = true;
    let r;
    try {
      r = await api(`/ui/api/keys/${encodeURIComponent(id)}/${act}`, { method: 'POST' });
    } catch (e) {
      b.disabled = false;
      reportError(`Could not ${act} the key`, e);
      return;
    }
    if (act === 'rotate') showSecret(r.key, `New secret for key ${name}`);
    else notify(`Key ${name} disabled.`);
    await reload();
    // The Disable button is now disabled: keep focus in the row.
    if (act === 'disable') tbody.querySelector(`tr[data-id="${CSS.escape(id)}"] .key-rotate`)?.focus();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formError.textContent = '';
    const body = {
      name: $('#key-name').value.trim(),
      tenant: $('#key-tenant').value.trim(),
      tier: tier.value,
      user: $('#key-user').value.trim(),
    };
    submit.disabled = true;
    try {
      const r = await api('/ui/api/keys', { method: 'POST', body });
      form.reset();
      showSecret(r.key, `New key ${body.name}`);
    } catch (e) {
      if (e instanceof AuthRedirect) return;
      formError.textContent = `Could not create the key: ${describeError(e)}.`;
      return;
    } finally {
      submit.disabled = false;
    }
    await reload();
  });

  reload();
}

// ---------------------------------------------------------------- providers

const BREAKER = { closed: '●', open: '○', 'half-open': '◐', none: '–' };

// summary turns a policy object into one line of text ("off" when absent).
function summary(obj) {
  if (obj == null) return 'off';
  if (typeof obj !== 'object') return String(obj);
  const parts = Object.entries(obj).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.length ? parts.join(', ') : 'on';
}

function pageProviders() {
  let seenRoutes = '';
  let seenContracts = '';
  poll(async () => {
    let d;
    try {
      d = await api('/ui/api/providers');
    } catch (e) {
      reportError('Could not load providers', e);
      return;
    }
    notify('');
    $('#providers-updated').textContent = `Updated ${fmtClock(new Date())}; refreshes every 5 s.`;

    fillTable($('#targets-table'), d.targets || [], [
      { get: (t) => t.route || NONE },
      { get: (t) => t.provider || NONE },
      { get: (t) => t.model || NONE },
      {
        get: (t) => el('span', { class: 'breaker', 'data-state': t.breaker },
          el('span', { 'aria-hidden': 'true' }, BREAKER[t.breaker] || '?'), ` ${t.breaker || 'unknown'}`,
          t.breaker === 'open' && t.open_for_ms > 0 ? ` (retry in ${(t.open_for_ms / 1000).toFixed(1)} s)` : null),
      },
      { num: true, get: (t) => (t.max_concurrent > 0 ? `${fmtInt(t.in_flight)} / ${fmtInt(t.max_concurrent)}` : 'not counted (no bulkhead)') },
      {
        get: (t) => {
          const errs = Object.entries(t.recent_errors || {}).filter(([, n]) => n > 0);
          return errs.length ? errs.map(([c, n]) => `${c}: ${fmtInt(n)}`).join(', ') : 'none';
        },
      },
    ], 'No targets configured.');

    const routes = JSON.stringify(d.routes || []);
    if (routes !== seenRoutes) {
      seenRoutes = routes;
      renderRoutes(d.routes || []);
    }
    const contracts = JSON.stringify(d.contracts || []);
    if (contracts !== seenContracts) {
      seenContracts = contracts;
      renderContracts(d.contracts || []);
    }
  }, 5000);
}

function renderRoutes(routes) {
  const list = $('#routes .route-list');
  if (!routes.length) {
    list.replaceChildren(el('p', null, 'No routes configured.'));
    return;
  }
  list.replaceChildren(...routes.map((r) => {
    const table = el('table', null,
      el('caption', null, `Targets of ${r.name}`),
      el('thead', null, el('tr', null,
        el('th', { scope: 'col' }, 'Provider'), el('th', { scope: 'col' }, 'Model'), el('th', { scope: 'col', class: 'num' }, 'Weight'))),
      el('tbody'));
    fillTable(table, r.targets || [], [
      { get: (t) => t.provider || NONE },
      { get: (t) => t.model || NONE },
      { num: true, get: (t) => (isNum(t.weight) ? String(t.weight) : NONE) },
    ], 'No targets.');
    return el('article', { class: 'card route', 'data-route': r.name },
      el('h3', null, r.name),
      el('div', { class: 'table-wrap' }, table),
      el('dl', { class: 'kv' }, ['retry', 'hedge', 'cache', 'breaker']
        .filter((k) => k === 'retry' || k === 'hedge' || k in r)
        .flatMap((k) => [el('dt', null, k[0].toUpperCase() + k.slice(1)), el('dd', null, summary(r[k]))])));
  }));
}

function renderContracts(contracts) {
  const list = $('#contracts .contract-list');
  if (!contracts.length) {
    list.replaceChildren(el('p', null, 'No contracts configured.'));
    return;
  }
  list.replaceChildren(...contracts.map((c) => el('article', { class: 'card contract', 'data-contract': c.name },
    el('h3', null, c.name),
    c.description ? el('p', null, c.description) : null,
    el('p', null, 'Model: ', c.model || NONE),
    el('pre', { tabindex: 0, 'aria-label': `Schema of ${c.name}` }, JSON.stringify(c.schema ?? null, null, 2)))));
}

// ---------------------------------------------------------------- playground

// sseParser returns a decoder of a text/event-stream body fed in pieces of
// text. It follows the WHATWG event-stream rules: lines end in CRLF, LF or
// CR; a blank line dispatches the event; lines starting with ':' are
// comments; one space after the colon is dropped; several data lines are
// joined with '\n'; an event with no data line is not dispatched, nor is an
// unfinished one at the end of the stream.
function sseParser(onEvent) {
  let buf = '';
  let type = '';
  let data = [];
  let hasData = false;
  function line(l) {
    if (l === '') {
      if (hasData) onEvent(type || 'message', data.join('\n'));
      type = '';
      data = [];
      hasData = false;
      return;
    }
    if (l[0] === ':') return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') {
      data.push(value);
      hasData = true;
    }
  }
  // push takes the next piece of text; end says it is the last.
  return function push(text, end = false) {
    buf += text;
    const re = /\r\n|\r|\n/g;
    let start = 0;
    let m;
    while ((m = re.exec(buf))) {
      // A CR at the very end may be the first half of a CRLF.
      if (m[0] === '\r' && m.index === buf.length - 1 && !end) break;
      line(buf.slice(start, m.index));
      start = re.lastIndex;
    }
    buf = buf.slice(start);
  };
}

function violationText(d) {
  if (Array.isArray(d.errors) && d.errors.length) {
    return d.errors.map((e) => (typeof e === 'string' ? e
      : [e.path ?? e.instance_location ?? e.instanceLocation, e.message ?? e.error].filter((x) => x != null && x !== '').join(' '))).join('; ');
  }
  return d.message || d.error || 'the object does not match the schema';
}

function pagePlayground() {
  const [form, target, send, stop, out, partial, validation, errorP, state] = byId('playground', 'pg-target',
    'pg-send', 'pg-stop', 'pg-output', 'pg-partial', 'pg-validation', 'pg-error', 'pg-state');
  const [ddID, ddUsage, ddCost, ddAttempts, ddLatency] =
    byId('pg-request-id', 'pg-usage', 'pg-cost', 'pg-attempts', 'pg-latency');
  let ctrl = null;

  async function loadTargets() {
    send.disabled = true;
    let d;
    try {
      d = await api('/ui/api/providers');
    } catch (e) {
      reportError('Could not load the targets', e);
      return;
    }
    const group = (label, kind, names) => el('optgroup', { label },
      names.map((n) => el('option', { value: `${kind}:${n}` }, n)));
    const routes = (d.routes || []).map((r) => r.name);
    const contracts = (d.contracts || []).map((c) => c.name);
    const groups = [];
    if (routes.length) groups.push(group('Routes', 'route', routes));
    if (contracts.length) groups.push(group('Contracts', 'contract', contracts));
    if (!groups.length) groups.push(el('option', { value: '', disabled: true }, 'No routes or contracts configured'));
    target.replaceChildren(...groups);
    send.disabled = !target.value;
    notify('');
  }

  function reset() {
    out.replaceChildren();
    out.dataset.pieces = '0';
    partial.textContent = '';
    validation.textContent = '';
    delete validation.dataset.valid;
    errorP.textContent = '';
    for (const n of [ddID, ddUsage, ddCost, ddAttempts, ddLatency]) n.textContent = NONE;
  }

  function showError(code, message) {
    errorP.textContent = `Error${code ? ` ${code}` : ''}: ${message || 'the call failed'}`;
  }

  function running(on) {
    const wasFocused = document.activeElement;
    send.disabled = on;
    stop.disabled = !on;
    if (on && wasFocused === send) stop.focus();
    if (!on && (wasFocused === stop || wasFocused === document.body)) send.focus();
  }

  async function run() {
    reset();
    ctrl = new AbortController();
    running(true);
    state.textContent = 'Running…';
    let pieces = 0;
    let done = false;
    let failed = false;
    const handle = (type, raw) => {
      const d = raw ? parseJSON(raw) : {};
      if (d == null || typeof d !== 'object') return;
      switch (type) {
        case 'delta':
          out.append(String(d.text ?? ''));
          out.dataset.pieces = String(++pieces);
          break;
        case 'partial':
          partial.textContent = JSON.stringify(d.object ?? null, null, 2);
          break;
        case 'result':
          partial.textContent = JSON.stringify(d.object ?? null, null, 2);
          validation.textContent = d.valid ? 'valid' : `schema violation: ${violationText(d)}`;
          validation.dataset.valid = String(!!d.valid);
          break;
        case 'error':
          failed = true;
          showError(d.code, d.message);
          if (d.code === 'schema_violation' && !validation.textContent) {
            validation.textContent = `schema violation: ${d.message || 'the object does not match the schema'}`;
            validation.dataset.valid = 'false';
          }
          break;
        case 'done': {
          done = true;
          const u = d.usage || {};
          ddID.textContent = d.request_id || NONE;
          ddUsage.textContent = `${fmtInt(u.input_tokens)} in / ${fmtInt(u.output_tokens)} out tokens`;
          ddCost.textContent = fmtUSD(d.cost_usd);
          ddAttempts.textContent = isNum(d.attempts) ? String(d.attempts) : NONE;
          ddLatency.textContent = fmtMs(d.latency_ms) + (isNum(d.ttft_ms) ? ` (first token after ${fmtMs(d.ttft_ms)})` : '');
          break;
        }
        default:
      }
    };
    try {
      const res = await fetch('/ui/api/playground', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-CSRF-Token': CSRF },
        body: JSON.stringify({ target: target.value, system: $('#pg-system').value, message: $('#pg-message').value }),
        signal: ctrl.signal,
      });
      if (res.status === 401) {
        goLogin();
        return;
      }
      if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream') || !res.body) {
        const e = (await res.json().catch(() => null))?.error || {};
        failed = true;
        showError(e.code, e.message || `the server answered HTTP ${res.status}`);
      } else {
        const push = sseParser(handle);
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        for (;;) {
          const { value, done: end } = await reader.read();
          if (end) break;
          push(dec.decode(value, { stream: true }));
        }
        push(dec.decode(), true);
      }
      if (failed) state.textContent = 'Failed.';
      else state.textContent = done ? 'Done.' : 'The stream ended without a summary.';
    } catch (e) {
      if (e.name === 'AbortError') {
        state.textContent = 'Stopped.';
      } else {
        showError('', 'the connection to the server failed');
        state.textContent = 'Failed.';
      }
    } finally {
      ctrl = null;
      running(false);
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!ctrl && target.value) run();
  });
  stop.addEventListener('click', () => ctrl?.abort());

  loadTargets();
}

// ---------------------------------------------------------------- start

const PAGES = { overview: pageOverview, requests: pageRequests, keys: pageKeys, providers: pageProviders, playground: pagePlayground };

document.addEventListener('DOMContentLoaded', () => {
  const page = document.getElementById('page');
  const start = page && PAGES[page.dataset.page];
  if (start) start();
});
