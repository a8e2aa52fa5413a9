// Sluice web console: one ES module, no dependencies, no build step.
//
// Everything it shows comes from the HTTP API under /api/v1 (docs/http-api.md) and everything it
// renders goes through textContent or setAttribute: topic names, keys and payloads are untrusted.
// The broker's Content-Security-Policy allows no inline script or style, so this file never
// writes HTML strings or style attributes; charts are SVG elements built with the DOM.

const API = '/api/v1';
const TOKEN_KEY = 'sluice.token';
const POLL_MS = 2000;
const PAGE_SIZE = 50;
const FILTER_DEBOUNCE_MS = 200;
const SVG_NS = 'http://www.w3.org/2000/svg';
const EN_DASH = '\u2013';

const app = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  who: null, // the last whoami answer of an authenticated (or auth-less) session
  view: null, // the current page: { stop(): Promise }
  topics: { filter: '', sort: 'name', order: 'asc', offset: 0, limit: PAGE_SIZE },
};

// ---------------------------------------------------------------------------------------------
// DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child)); // strings become text nodes
  }
}

function byId(id) {
  return document.getElementById(id);
}

function setValue(el, text, raw) {
  el.textContent = text;
  if (raw === undefined || raw === null) delete el.dataset.value;
  else el.dataset.value = String(raw);
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtInt(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n ?? EN_DASH);
  return Math.round(n).toLocaleString('en-US');
}

function fmtRate(r) {
  if (typeof r !== 'number' || !Number.isFinite(r)) return EN_DASH;
  return `${r.toFixed(r >= 100 ? 0 : r >= 10 ? 1 : 2)}/s`;
}

function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return EN_DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return EN_DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let s = Math.floor(ms / 1000);
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.slice(0, 3).join(' ');
}

function fmtMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return EN_DASH;
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}

function fmtTime(value) {
  if (value === null || value === undefined || value === '') return EN_DASH;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtClock(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  describe() {
    return `${this.code}: ${this.message}`;
  }
}

function describeError(err) {
  if (err instanceof ApiError) return err.describe();
  return err && err.message ? err.message : String(err);
}

async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  if (app.token) headers.Authorization = `Bearer ${app.token}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, 'unreachable', `cannot reach the broker (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const e = data && data.error ? data.error : {};
    const err = new ApiError(response.status, e.code || `http${response.status}`,
      e.message || `the broker answered ${response.status} ${response.statusText}`);
    if (response.status === 401 && !options.noAuthRedirect) onUnauthenticated(err);
    throw err;
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(response.status, 'badResponse', `${method} ${path}: the answer is not JSON`);
  }
  return data;
}

const enc = encodeURIComponent;

function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${enc(k)}=${enc(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function canManage() {
  return Boolean(app.who && app.who.can && app.who.can.manage);
}

// ---------------------------------------------------------------------------------------------
// Status area

const status = { source: null };

function showStatus(kind, text, source = 'action') {
  const box = byId('status');
  box.hidden = false;
  box.dataset.kind = kind;
  box.className = `status status-${kind}`;
  byId('status-text').textContent = text;
  status.source = source;
}

function clearStatus(source) {
  if (source && status.source !== source) return;
  const box = byId('status');
  box.hidden = true;
  delete box.dataset.kind;
  byId('status-text').textContent = '';
  status.source = null;
}

function showError(err, prefix, source = 'action') {
  showStatus('error', prefix ? `${prefix}: ${describeError(err)}` : describeError(err), source);
}

// ---------------------------------------------------------------------------------------------
// Polling: runs fn now and then every `ms` after it finishes; never two at once.

class Poller {
  constructor(fn, ms, onError) {
    this.fn = fn;
    this.ms = ms;
    this.onError = onError;
    this.timer = null;
    this.inflight = null;
    this.stopped = false;
    this.run();
  }

  run() {
    if (this.stopped) return this.inflight || Promise.resolve();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.inflight) return this.inflight;
    this.inflight = (async () => {
      try {
        await this.fn();
      } catch (err) {
        if (!this.stopped && this.onError) this.onError(err);
      } finally {
        this.inflight = null;
        if (!this.stopped) this.timer = setTimeout(() => this.run(), this.ms);
      }
    })();
    return this.inflight;
  }

  // Refreshes now (after any refresh already under way).
  async refresh() {
    if (this.inflight) await this.inflight;
    return this.run();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    return this.inflight || Promise.resolve();
  }

  restart() {
    this.stopped = false;
    return this.run();
  }
}

function pollError(err) {
  if (err instanceof ApiError && err.status === 401) return; // the login form has taken over
  showError(err, 'refresh failed', 'poll');
}

// ---------------------------------------------------------------------------------------------
// Modal dialog (never window.confirm)

let modalOpen = null;

// Opens the page's modal. `body` is a list of nodes. `requireText`: the confirm button stays
// disabled until this exact text is typed. `validate()` may return an error text to keep the
// dialog open. Resolves true on confirm, false on cancel or Escape.
function openModal({ title, body, confirmLabel = 'Confirm', confirmTestid = 'confirm', danger = false,
  requireText = null, validate = null, action = '' }) {
  if (modalOpen) modalOpen(false);
  clearStatus(); // the status area then speaks of this action only
  const dialog = byId('modal');
  dialog.replaceChildren();
  dialog.dataset.action = action;
  const error = h('p', { class: 'modal-error', testid: 'modal-error', role: 'alert', hidden: true });
  const confirm = h('button', {
    type: 'button',
    class: danger ? 'button button-danger' : 'button button-primary',
    testid: confirmTestid,
  }, confirmLabel);
  const cancel = h('button', { type: 'button', class: 'button', testid: 'cancel' }, 'Cancel');
  let typed = null;
  const parts = [h('h2', { id: 'modal-title', testid: 'modal-title' }, title),
    h('div', { class: 'modal-body', testid: 'modal-body' }, body || [])];
  if (requireText !== null) {
    typed = h('input', {
      type: 'text', class: 'input', testid: 'confirm-input', autocomplete: 'off', spellcheck: 'false',
      'aria-label': 'Type the name to confirm',
    });
    confirm.disabled = true;
    typed.addEventListener('input', () => {
      confirm.disabled = typed.value !== requireText;
    });
    parts.push(h('label', { class: 'confirm-label' },
      h('span', {}, 'Type ', h('code', {}, requireText), ' to confirm:'), typed));
  }
  parts.push(error, h('div', { class: 'modal-actions' }, cancel, confirm));
  dialog.append(...parts);

  return new Promise((resolve) => {
    const finish = (result) => {
      if (modalOpen !== finish) return;
      modalOpen = null;
      dialog.removeEventListener('cancel', onCancel);
      dialog.removeEventListener('keydown', onKey);
      if (dialog.open) dialog.close();
      dialog.replaceChildren();
      delete dialog.dataset.action;
      resolve(result);
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(false);
    };
    const onConfirm = () => {
      if (confirm.disabled) return;
      if (validate) {
        const problem = validate();
        if (problem) {
          error.textContent = problem;
          error.hidden = false;
          return;
        }
      }
      finish(true);
    };
    const onKey = (event) => {
      if (event.key === 'Enter' && event.target instanceof HTMLInputElement && event.target.type !== 'checkbox') {
        event.preventDefault();
        onConfirm();
      }
    };
    modalOpen = finish;
    dialog.addEventListener('cancel', onCancel);
    dialog.addEventListener('keydown', onKey);
    cancel.addEventListener('click', () => finish(false));
    confirm.addEventListener('click', onConfirm);
    dialog.showModal();
    const first = typed || dialog.querySelector('input, select') || cancel;
    first.focus();
  });
}

function closeModal() {
  if (modalOpen) modalOpen(false);
}

// ---------------------------------------------------------------------------------------------
// Charts: SVG polylines in a fixed viewBox stretched to the figure's width.

const CHART_W = 600;
const CHART_H = 140;

function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

class LineChart {
  // series: [{ key, label }]; format: value -> text
  constructor(testid, title, series, format) {
    this.series = series;
    this.format = format;
    this.maxLabel = h('span', { class: 'chart-max', testid: `${testid}-max` });
    this.svg = svg('svg', {
      class: 'chart-svg', viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none',
      role: 'img', 'aria-label': title,
    });
    this.t0 = h('span', {});
    this.t1 = h('span', {});
    this.legend = h('div', { class: 'legend' });
    this.legendValues = series.map((s, i) => {
      const value = h('span', { class: 'legend-value', testid: `${testid}-${s.key}` });
      this.legend.append(h('span', { class: 'legend-item' },
        h('span', { class: `swatch series-${i}` }), h('span', {}, s.label), value));
      return value;
    });
    this.el = h('figure', { class: 'chart', testid },
      h('figcaption', {}, h('span', { class: 'chart-title' }, title), this.maxLabel),
      this.svg,
      h('div', { class: 'chart-axis' }, this.t0, this.t1),
      this.legend);
    this.update([], series.map(() => []));
  }

  // times: Unix ms per point; values: one array per series, aligned with times.
  update(times, values) {
    const n = times.length;
    let max = 0;
    for (const vs of values) for (const v of vs) if (Number.isFinite(v) && v > max) max = v;
    const top = niceCeil(max);
    this.maxLabel.textContent = this.format(top);
    this.maxLabel.dataset.value = String(top);
    const nodes = [];
    for (const f of [0, 0.5, 1]) {
      const y = (CHART_H - 1) - f * (CHART_H - 2);
      nodes.push(svg('line', { class: 'grid', x1: 0, x2: CHART_W, y1: y.toFixed(1), y2: y.toFixed(1), 'vector-effect': 'non-scaling-stroke' }));
    }
    const tFirst = n ? times[0] : 0;
    const tLast = n ? times[n - 1] : 1;
    const span = Math.max(1, tLast - tFirst);
    values.forEach((vs, i) => {
      if (n === 0) return;
      const pts = [];
      for (let k = 0; k < n; k += 1) {
        const v = Number.isFinite(vs[k]) ? vs[k] : 0;
        const x = n === 1 ? CHART_W : ((times[k] - tFirst) / span) * CHART_W;
        const y = (CHART_H - 1) - (v / top) * (CHART_H - 2);
        pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      }
      if (n === 1) pts.unshift(`0,${pts[0].split(',')[1]}`);
      nodes.push(svg('polyline', { class: `line series-${i}`, points: pts.join(' '), 'vector-effect': 'non-scaling-stroke' }));
    });
    this.svg.replaceChildren(...nodes);
    this.svg.dataset.points = String(n);
    this.t0.textContent = n ? fmtClock(tFirst) : '';
    this.t1.textContent = n ? fmtClock(tLast) : 'no samples yet';
    this.legendValues.forEach((el, i) => {
      const last = n ? values[i][n - 1] : undefined;
      setValue(el, last === undefined ? EN_DASH : this.format(last), last);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Keyed table rows: updates rows in place so polling does not replace what the user points at.

function syncRows(tbody, items, keyOf, create, update) {
  const existing = new Map();
  for (const row of Array.from(tbody.children)) {
    if (row.dataset.key !== undefined) existing.set(row.dataset.key, row);
    else row.remove();
  }
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let row = existing.get(key);
    if (row) existing.delete(key);
    else {
      row = create(item);
      row.dataset.key = key;
    }
    update(row, item);
    const expectedNext = previous ? previous.nextSibling : tbody.firstChild;
    if (expectedNext !== row) tbody.insertBefore(row, expectedNext);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

function emptyRow(tbody, columns, text, testid) {
  tbody.replaceChildren(h('tr', { class: 'empty', testid }, h('td', { colspan: columns }, text)));
}

// ---------------------------------------------------------------------------------------------
// Routing and session

function route() {
  const hash = location.hash || '#/';
  const topic = /^#\/topics\/([^?]+)$/.exec(hash);
  if (topic) {
    try {
      return { name: 'topic', topic: decodeURIComponent(topic[1]) };
    } catch {
      return { name: 'topics' };
    }
  }
  if (hash === '#/topics' || hash.startsWith('#/topics?')) return { name: 'topics' };
  return { name: 'overview' };
}

async function stopView() {
  closeModal();
  const view = app.view;
  app.view = null;
  if (view) await view.stop();
}

function render() {
  if (!app.who) return;
  stopView();
  const r = route();
  for (const link of document.querySelectorAll('#nav a')) {
    const active = link.dataset.route === (r.name === 'topic' ? 'topics' : r.name);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (r.name === 'topic') app.view = topicView(r.topic);
  else if (r.name === 'topics') app.view = topicsView();
  else app.view = overviewView();
  document.title = r.name === 'topic' ? `${r.topic} \u00b7 Sluice` : r.name === 'topics' ? 'Topics \u00b7 Sluice' : 'Sluice console';
}

function setMain(...nodes) {
  byId('main').replaceChildren(...nodes);
}

function enter(who) {
  app.who = who;
  const principal = who.principal ?? (who.auth ? 'unknown' : 'anonymous');
  byId('principal').textContent = principal;
  byId('principal').title = who.auth ? `signed in as ${principal}` : 'authentication is off on this broker';
  byId('logout').hidden = !who.auth;
  byId('readonly-badge').hidden = canManage();
  byId('who').hidden = false;
  byId('nav').hidden = false;
  document.body.dataset.principal = principal;
  document.body.dataset.manage = String(canManage());
  render();
}

function leave() {
  app.who = null;
  byId('who').hidden = true;
  byId('nav').hidden = true;
  byId('principal').textContent = '';
  delete document.body.dataset.principal;
  delete document.body.dataset.manage;
}

function forgetToken() {
  app.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
}

function onUnauthenticated(err) {
  forgetToken();
  stopView();
  leave();
  clearStatus();
  showLogin(`${describeError(err)}. Sign in again.`);
}

function showLogin(message, kind = 'error') {
  leave();
  const token = h('input', {
    type: 'password', class: 'input', id: 'login-token', testid: 'login-token', autocomplete: 'off',
    spellcheck: 'false', required: true, placeholder: 'token or grant secret',
  });
  const note = h('p', { class: kind === 'error' ? 'login-error' : 'login-note', testid: 'login-error', role: 'alert', hidden: !message }, message || '');
  const submit = h('button', { type: 'submit', class: 'button button-primary', testid: 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'login card', testid: 'login-form', autocomplete: 'off' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This broker requires authentication. Paste a token made with ',
      h('code', {}, 'sluice auth tokens create'), ' (or the admin token). It is kept in this tab only.'),
    h('label', { for: 'login-token' }, 'Token'), token, note, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const secret = token.value.trim();
    if (!secret) {
      note.className = 'login-error';
      note.textContent = 'Enter a token.';
      note.hidden = false;
      return;
    }
    submit.disabled = true;
    app.token = secret;
    try {
      const who = await api('GET', '/whoami', undefined, { noAuthRedirect: true });
      if (who.auth && !who.authenticated) throw new ApiError(401, 'unauthenticated', 'the broker refused this token');
      sessionStorage.setItem(TOKEN_KEY, secret);
      clearStatus();
      enter(who);
    } catch (err) {
      forgetToken();
      note.className = 'login-error';
      note.textContent = describeError(err);
      note.hidden = false;
      submit.disabled = false;
      token.select();
    }
  });
  setMain(form);
  token.focus();
}

async function boot() {
  byId('status-dismiss').addEventListener('click', () => clearStatus());
  byId('logout').addEventListener('click', async () => {
    forgetToken();
    await stopView();
    clearStatus();
    showLogin('You are logged out.', 'note');
  });
  window.addEventListener('hashchange', () => render());
  await start();
}

async function start() {
  try {
    const who = await api('GET', '/whoami', undefined, { noAuthRedirect: true });
    if (who.auth && !who.authenticated) {
      const had = Boolean(app.token);
      forgetToken();
      showLogin(had ? 'The saved token is no longer accepted. Sign in again.' : '', had ? 'error' : 'note');
      return;
    }
    enter(who);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forgetToken();
      showLogin(describeError(err));
      return;
    }
    const retry = h('button', { type: 'button', class: 'button', testid: 'retry' }, 'Retry');
    retry.addEventListener('click', () => start());
    setMain(h('div', { class: 'card' }, h('h1', {}, 'Cannot load the console'),
      h('p', { class: 'login-error', testid: 'boot-error' }, describeError(err)), retry));
  }
}

// ---------------------------------------------------------------------------------------------
// Overview

function card(grid, key, label) {
  const value = h('div', { class: 'card-value', testid: `stat-${key}` }, EN_DASH);
  const sub = h('div', { class: 'card-sub', testid: `stat-${key}-sub` });
  const el = h('div', { class: 'card stat', testid: `card-${key}` }, h('div', { class: 'card-label' }, label), value, sub);
  grid.append(el);
  return { el, value, sub };
}

function overviewView() {
  const grid = h('div', { class: 'cards', testid: 'overview-cards' });
  const c = {};
  for (const [key, label] of [['messages', 'Messages'], ['bytes', 'Bytes'], ['storage', 'Storage used'],
    ['connections', 'Connections'], ['consumers', 'Consumers'], ['topics', 'Topics'],
    ['publish-rate', 'Publish rate'], ['delivery-rate', 'Delivery rate'], ['uptime', 'Uptime'],
    ['version', 'Version']]) {
    c[key] = card(grid, key, label);
  }
  const barFill = svg('rect', { class: 'bar-fill', x: 0, y: 0, height: 8, width: 0 });
  const bar = svg('svg', { class: 'bar', viewBox: '0 0 100 8', preserveAspectRatio: 'none', testid: 'storage-bar', role: 'img', 'aria-label': 'storage used of limit' },
    svg('rect', { class: 'bar-track', x: 0, y: 0, width: 100, height: 8 }), barFill);
  c.storage.el.append(bar);

  const charts = {
    rates: new LineChart('chart-rates', 'Publish and delivery rate (msg/s)',
      [{ key: 'publish', label: 'publish' }, { key: 'delivery', label: 'delivery' }], fmtRate),
    storage: new LineChart('chart-storage', 'Storage used', [{ key: 'used', label: 'used' }], fmtBytes),
    connections: new LineChart('chart-connections', 'Connections and consumers',
      [{ key: 'connections', label: 'connections' }, { key: 'consumers', label: 'consumers' }], fmtInt),
    latency: new LineChart('chart-latency', 'Commit and fsync latency',
      [{ key: 'commit-p50', label: 'commit p50' }, { key: 'commit-p99', label: 'commit p99' },
        { key: 'fsync-p99', label: 'fsync p99' }], fmtMs),
  };
  const updated = h('span', { class: 'muted', testid: 'overview-updated' });
  const root = h('section', { class: 'page', testid: 'overview' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), updated),
    grid,
    h('div', { class: 'charts', testid: 'overview-charts' }, Object.values(charts).map((ch) => ch.el)));
  setMain(root);

  const poll = new Poller(async () => {
    const o = await api('GET', '/overview');
    const s = o.stats || {};
    setValue(c.messages.value, fmtInt(s.messages), s.messages);
    setValue(c.bytes.value, fmtBytes(s.bytes), s.bytes);
    c.bytes.sub.textContent = `${fmtInt(s.bytes)} bytes`;
    setValue(c.storage.value, fmtBytes(s.storage_used), s.storage_used);
    const pct = s.storage_limit > 0 ? Math.min(100, (100 * s.storage_used) / s.storage_limit) : 0;
    c.storage.sub.textContent = s.storage_limit > 0
      ? `of ${fmtBytes(s.storage_limit)} (${pct.toFixed(pct < 1 ? 2 : 1)}%)` : 'no limit';
    c.storage.sub.dataset.limit = String(s.storage_limit);
    barFill.setAttribute('width', pct.toFixed(2));
    bar.classList.toggle('bar-high', pct >= 90);
    setValue(c.connections.value, fmtInt(s.connections), s.connections);
    setValue(c.consumers.value, fmtInt(s.consumers), s.consumers);
    setValue(c.topics.value, fmtInt(s.topics), s.topics);
    setValue(c['publish-rate'].value, fmtRate(s.publish_rate), s.publish_rate);
    c['publish-rate'].sub.textContent = `${fmtInt(s.published_total)} published`;
    setValue(c['delivery-rate'].value, fmtRate(s.delivery_rate), s.delivery_rate);
    c['delivery-rate'].sub.textContent = `${fmtInt(s.delivered_total)} delivered`;
    setValue(c.uptime.value, fmtDuration(s.uptime_ms), s.uptime_ms);
    setValue(c.version.value, String(s.version ?? EN_DASH), s.version);
    c.version.sub.textContent = `${fmtInt(s.commits)} commits`;

    const samples = (o.history && Array.isArray(o.history.samples)) ? o.history.samples : [];
    const t = samples.map((x) => x.t);
    const col = (k) => samples.map((x) => Number(x[k]) || 0);
    charts.rates.update(t, [col('publish_rate'), col('delivery_rate')]);
    charts.storage.update(t, [col('storage_used')]);
    charts.connections.update(t, [col('connections'), col('consumers')]);
    charts.latency.update(t, [col('commit_p50_ms'), col('commit_p99_ms'), col('fsync_p99_ms')]);
    updated.textContent = `updated ${fmtClock(Date.now())}`;
    root.dataset.loaded = 'true';
    clearStatus('poll');
  }, POLL_MS, pollError);
  return { stop: () => poll.stop() };
}

// ---------------------------------------------------------------------------------------------
// Topics table

const TOPIC_COLUMNS = [
  { key: 'name', label: 'Name', numeric: false },
  { key: 'messages', label: 'Messages', numeric: true },
  { key: 'bytes', label: 'Bytes', numeric: true },
  { key: 'publish_rate', label: 'Publish rate', numeric: true },
  { key: 'groups', label: 'Groups', numeric: true },
  { key: 'lag_messages', label: 'Max lag', numeric: true },
  { key: 'created', label: 'Created', numeric: false },
];

function topicHref(name) {
  return `#/topics/${enc(name)}`;
}

function topicsView() {
  const state = app.topics;
  let seq = 0;
  let debounce = null;
  let stopped = false;

  const filter = h('input', {
    type: 'search', class: 'input filter', testid: 'filter', placeholder: 'Filter by name',
    'aria-label': 'Filter topics by name', value: state.filter, spellcheck: 'false', autocomplete: 'off',
  });
  filter.value = state.filter;
  const pageInfo = h('span', { class: 'page-info', testid: 'page-info' });
  const prev = h('button', { type: 'button', class: 'button', testid: 'prev-page' }, '\u2190 Prev');
  const next = h('button', { type: 'button', class: 'button', testid: 'next-page' }, 'Next \u2192');
  const tools = [filter, h('span', { class: 'spacer' }), pageInfo, prev, next];
  if (canManage()) {
    const create = h('button', { type: 'button', class: 'button button-primary', testid: 'create-topic' }, 'Create topic');
    create.addEventListener('click', () => createTopicFlow());
    tools.push(create);
  }

  const headRow = h('tr', {});
  const headers = new Map();
  for (const col of TOPIC_COLUMNS) {
    const button = h('button', { type: 'button', class: 'sort', testid: `sort-${col.key}` }, col.label,
      h('span', { class: 'sort-mark', 'aria-hidden': 'true' }));
    const th = h('th', { class: col.numeric ? 'num' : '', scope: 'col', 'data-sort': col.key }, button);
    button.addEventListener('click', () => {
      if (state.sort === col.key) state.order = state.order === 'asc' ? 'desc' : 'asc';
      else {
        state.sort = col.key;
        state.order = col.key === 'name' ? 'asc' : 'desc';
      }
      state.offset = 0;
      load();
    });
    headers.set(col.key, th);
    headRow.append(th);
  }
  const tbody = h('tbody', { testid: 'topics-body' });
  const table = h('table', { class: 'table', testid: 'topics-table' }, h('thead', {}, headRow), tbody);
  const root = h('section', { class: 'page', testid: 'topics' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Topics'),
      h('span', { class: 'muted', testid: 'topics-total' })),
    h('div', { class: 'toolbar' }, tools),
    h('div', { class: 'table-wrap' }, table));
  setMain(root);

  function markSort() {
    for (const [key, th] of headers) {
      const active = key === state.sort;
      if (active) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
      th.querySelector('.sort-mark').textContent = active ? (state.order === 'asc' ? ' \u25b2' : ' \u25bc') : '';
    }
  }

  function cellsOf(row) {
    const link = h('a', { href: '#', testid: 'topic-link' });
    const cells = {
      name: h('td', { class: 'name', testid: 'col-name' }, link),
      messages: h('td', { class: 'num', testid: 'col-messages' }),
      bytes: h('td', { class: 'num', testid: 'col-bytes' }),
      publish_rate: h('td', { class: 'num', testid: 'col-publish-rate' }),
      groups: h('td', { class: 'num', testid: 'col-groups' }),
      lag_messages: h('td', { class: 'num', testid: 'col-lag' }),
      created: h('td', { class: 'time', testid: 'col-created' }),
    };
    row.append(...Object.values(cells));
    row._cells = cells;
    row._link = link;
  }

  function updateRow(row, t) {
    const cells = row._cells;
    row.dataset.name = t.name;
    row._link.textContent = t.name;
    row._link.setAttribute('href', topicHref(t.name));
    setValue(cells.messages, fmtInt(t.messages), t.messages);
    setValue(cells.bytes, fmtBytes(t.bytes), t.bytes);
    cells.bytes.title = `${fmtInt(t.bytes)} bytes`;
    setValue(cells.publish_rate, fmtRate(t.publish_rate), t.publish_rate);
    setValue(cells.groups, fmtInt(t.groups), t.groups);
    setValue(cells.lag_messages, t.groups ? fmtInt(t.lag_messages) : EN_DASH, t.lag_messages);
    setValue(cells.created, fmtTime(t.created), t.created);
  }

  async function fetchPage() {
    const my = ++seq;
    const q = { filter: state.filter, sort: state.sort, order: state.order, offset: state.offset, limit: state.limit };
    table.dataset.loading = 'true';
    let data;
    try {
      data = await api('GET', `/topics${query(q)}`);
    } finally {
      if (my === seq) delete table.dataset.loading;
    }
    if (my !== seq || stopped) return;
    const rows = Array.isArray(data.topics) ? data.topics : [];
    if (rows.length === 0 && state.offset > 0 && data.matched > 0) {
      // The page emptied (topics deleted meanwhile): go back to the last page.
      state.offset = Math.max(0, Math.floor((data.matched - 1) / state.limit) * state.limit);
      fetchPage();
      return;
    }
    if (rows.length === 0) {
      emptyRow(tbody, TOPIC_COLUMNS.length, state.filter ? 'No topic matches the filter.' : 'No topics yet.', 'topics-empty');
    } else {
      syncRows(tbody, rows, (t) => t.name, (t) => {
        const row = h('tr', { testid: 'topic-row' });
        cellsOf(row);
        return row;
      }, updateRow);
    }
    const first = rows.length ? data.offset + 1 : 0;
    const last = data.offset + rows.length;
    pageInfo.textContent = `${fmtInt(first)}${EN_DASH}${fmtInt(last)} of ${fmtInt(data.matched)}`;
    pageInfo.dataset.first = String(first);
    pageInfo.dataset.last = String(last);
    pageInfo.dataset.matched = String(data.matched);
    pageInfo.dataset.total = String(data.total);
    root.querySelector('[data-testid="topics-total"]').textContent =
      `${fmtInt(data.total)} topic${data.total === 1 ? '' : 's'}${state.filter ? `, ${fmtInt(data.matched)} matching` : ''}`;
    prev.disabled = state.offset <= 0;
    next.disabled = data.offset + rows.length >= data.matched;
    table.dataset.query = query(q);
    root.dataset.loaded = 'true';
    clearStatus('poll');
  }

  const poll = new Poller(fetchPage, POLL_MS, pollError);
  // Asks at once, even while a refresh is under way: the sequence number drops stale answers.
  function load() {
    markSort();
    fetchPage().catch(pollError);
  }

  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.filter = filter.value.trim();
      state.offset = 0;
      load();
    }, FILTER_DEBOUNCE_MS);
  });
  prev.addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - state.limit);
    load();
  });
  next.addEventListener('click', () => {
    state.offset += state.limit;
    load();
  });
  markSort();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(debounce);
      return poll.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Create topic

function parseDuration(text, label) {
  const t = text.trim();
  if (!t) return null;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/i.exec(t);
  if (!m) throw new Error(`${label}: a number and a unit (ms, s, m, h, d, w), e.g. 7d; got "${t}"`);
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * unit);
}

function parseSize(text, label) {
  const t = text.trim();
  if (!t) return null;
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i.exec(t);
  if (!m) throw new Error(`${label}: a number of bytes with an optional unit (KiB, MiB, GiB, TiB, KB, MB...), e.g. 10GiB; got "${t}"`);
  const unit = {
    b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4,
  }[(m[2] || 'b').toLowerCase()];
  return Math.round(Number(m[1]) * unit);
}

function parseCount(text, label) {
  const t = text.trim();
  if (!t) return null;
  if (!/^\d+$/.test(t)) throw new Error(`${label}: a whole number; got "${t}"`);
  return Number(t);
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,200}$/;

async function createTopicFlow() {
  const field = (key, label, hint, attrs = {}) => {
    const input = h('input', { type: 'text', class: 'input', name: key, testid: `create-${key}`, autocomplete: 'off', spellcheck: 'false', placeholder: hint, ...attrs });
    return { input, el: h('label', { class: 'field' }, h('span', {}, label), input) };
  };
  const check = (key, label) => {
    const input = h('input', { type: 'checkbox', name: key, testid: `create-${key}` });
    return { input, el: h('label', { class: 'field field-check' }, input, h('span', {}, label)) };
  };
  const f = {
    name: field('name', 'Name', '1-200 of A-Z a-z 0-9 . _ -'),
    max_age: field('max-age', 'Max age', 'e.g. 7d (default: keep)'),
    max_bytes: field('max-bytes', 'Max bytes', 'e.g. 10GiB (default: unlimited)'),
    max_messages: field('max-messages', 'Max messages', 'default: unlimited', { inputmode: 'numeric' }),
    max_message_size: field('max-message-size', 'Max message size', 'default 1MiB'),
    work_queue: check('work-queue', 'Work queue: drop messages once every group acknowledged them'),
    max_deliveries: field('max-deliveries', 'Max deliveries', 'default: unlimited', { inputmode: 'numeric' }),
    dead_letter_topic: field('dead-letter', 'Dead-letter topic', 'topic name (optional)'),
    dead_letter_expired: check('dead-letter-expired', 'Send expired messages to the dead-letter topic'),
    default_ttl: field('default-ttl', 'Default TTL', 'e.g. 1h (default: none)'),
    dedup_window: field('dedup-window', 'Dedup window', 'default 2m'),
    subjects: field('subjects', 'Subjects', "comma-separated, e.g. orders.>"),
  };
  let request = null;
  const build = () => {
    const name = f.name.input.value.trim();
    if (!TOPIC_NAME.test(name)) throw new Error(`name: 1-200 characters of [A-Za-z0-9._-]; got "${name}"`);
    const settings = {};
    const put = (k, v) => {
      if (v !== null && v !== undefined && v !== '' && v !== false) settings[k] = v;
    };
    put('max_age_ms', parseDuration(f.max_age.input.value, 'max age'));
    put('max_bytes', parseSize(f.max_bytes.input.value, 'max bytes'));
    put('max_messages', parseCount(f.max_messages.input.value, 'max messages'));
    put('max_message_size', parseSize(f.max_message_size.input.value, 'max message size'));
    put('work_queue', f.work_queue.input.checked);
    put('max_deliveries', parseCount(f.max_deliveries.input.value, 'max deliveries'));
    const dlt = f.dead_letter_topic.input.value.trim();
    if (dlt && !TOPIC_NAME.test(dlt)) throw new Error(`dead-letter topic: 1-200 characters of [A-Za-z0-9._-]; got "${dlt}"`);
    put('dead_letter_topic', dlt);
    put('dead_letter_expired', f.dead_letter_expired.input.checked);
    put('default_ttl_ms', parseDuration(f.default_ttl.input.value, 'default TTL'));
    put('dedup_window_ms', parseDuration(f.dedup_window.input.value, 'dedup window'));
    const subjects = f.subjects.input.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (subjects.length) settings.subjects = subjects;
    return Object.keys(settings).length ? { name, settings } : { name };
  };
  const filled = await openModal({
    title: 'Create topic',
    action: 'create-topic-form',
    body: [h('div', { class: 'form-grid', testid: 'create-form' }, Object.values(f).map((x) => x.el))],
    confirmLabel: 'Next',
    confirmTestid: 'create-next',
    validate: () => {
      try {
        request = build();
        return null;
      } catch (err) {
        return err.message;
      }
    },
  });
  if (!filled) return;
  const lines = Object.entries(request.settings || {}).map(([k, v]) =>
    h('li', {}, h('code', {}, k), ' = ', h('code', {}, Array.isArray(v) ? v.join(', ') : String(v))));
  const ok = await openModal({
    title: 'Create this topic?',
    action: 'create-topic',
    body: [h('p', {}, 'This creates the topic ', h('strong', { testid: 'confirm-subject' }, request.name),
      lines.length ? ' with these settings:' : ' with the default settings.'),
    lines.length ? h('ul', { class: 'settings-list' }, lines) : null],
    confirmLabel: 'Create topic',
  });
  if (!ok) {
    showStatus('info', `Cancelled: topic "${request.name}" was not created.`);
    return;
  }
  try {
    const topic = await api('POST', '/topics', request);
    showStatus('success', `Created topic "${topic.name || request.name}".`);
    location.hash = topicHref(topic.name || request.name);
  } catch (err) {
    showError(err, `Create topic "${request.name}" failed`);
  }
}

// ---------------------------------------------------------------------------------------------
// Topic page

const SETTING_LABELS = [
  ['max_age_ms', 'Max age', (v) => (v ? `${fmtDuration(v)} (${fmtInt(v)} ms)` : 'unlimited')],
  ['max_bytes', 'Max bytes', (v) => (v ? `${fmtBytes(v)} (${fmtInt(v)})` : 'unlimited')],
  ['max_messages', 'Max messages', (v) => (v ? fmtInt(v) : 'unlimited')],
  ['max_message_size', 'Max message size', (v) => (v ? `${fmtBytes(v)} (${fmtInt(v)})` : 'default')],
  ['work_queue', 'Work queue', (v) => (v ? 'yes' : 'no')],
  ['max_deliveries', 'Max deliveries', (v) => (v ? fmtInt(v) : 'unlimited')],
  ['dead_letter_topic', 'Dead-letter topic', (v) => v || 'none'],
  ['dead_letter_expired', 'Dead-letter expired', (v) => (v ? 'yes' : 'no')],
  ['dedup_window_ms', 'Dedup window', (v) => (v ? fmtDuration(v) : 'default')],
  ['default_ttl_ms', 'Default TTL', (v) => (v ? fmtDuration(v) : 'none')],
  ['subjects', 'Subjects', (v) => (Array.isArray(v) && v.length ? v.join(', ') : 'its own name')],
];

const GROUP_COLUMNS = [
  ['name', 'Group'], ['ordering', 'Ordering'], ['position', 'Position'], ['ack_floor', 'Ack floor'],
  ['pending', 'Pending'], ['lag', 'Lag (msgs)'], ['lag-seconds', 'Lag (s)'], ['delivered', 'Delivered'],
  ['acked', 'Acked'], ['nacked', 'Nacked'], ['redelivered', 'Redelivered'],
  ['dead-lettered', 'Dead-lettered'], ['consumers', 'Consumers'],
];

function topicView(name) {
  const path = `/topics/${enc(name)}`;
  let stopped = false;
  let loadedOnce = false;
  const rateSamples = []; // { t, total }
  let lastTopic = null;

  const counters = h('div', { class: 'cards cards-small', testid: 'topic-counters' });
  const c = {};
  for (const [key, label] of [['messages', 'Messages'], ['bytes', 'Bytes'], ['first-offset', 'First offset'],
    ['last-offset', 'Last offset'], ['published-total', 'Published'], ['publish-rate', 'Publish rate'],
    ['expired', 'Expired'], ['scheduled', 'Scheduled'], ['key-blocked', 'Key-blocked'], ['created', 'Created']]) {
    const value = h('div', { class: 'card-value', testid: `topic-${key}` }, EN_DASH);
    const el = h('div', { class: `card stat${key === 'created' ? ' card-wide' : ''}` }, h('div', { class: 'card-label' }, label), value);
    counters.append(el);
    c[key] = value;
  }
  const settings = h('dl', { class: 'settings', testid: 'topic-settings' });
  const settingValues = {};
  for (const [key, label] of SETTING_LABELS) {
    const dd = h('dd', { 'data-key': key, testid: `setting-${key}` });
    settingValues[key] = dd;
    settings.append(h('div', { class: 'setting' }, h('dt', {}, label), dd));
  }
  const rateChart = new LineChart('chart-topic-rate', 'Publish rate (msg/s, measured by this page)',
    [{ key: 'publish', label: 'publish' }], fmtRate);

  const groupHead = h('tr', {}, GROUP_COLUMNS.map(([k, label]) =>
    h('th', { scope: 'col', class: k === 'name' || k === 'ordering' ? '' : 'num' }, label)),
  canManage() ? h('th', { scope: 'col' }, 'Reset / delete') : null);
  const groupBody = h('tbody', { testid: 'groups-body' });
  const groupsTable = h('table', { class: 'table table-compact', testid: 'groups-table' }, h('thead', {}, groupHead), groupBody);
  const consumerBody = h('tbody', { testid: 'consumers-body' });
  const consumersTable = h('table', { class: 'table', testid: 'consumers-table' },
    h('thead', {}, h('tr', {}, ['Group', 'Consumer', 'Peer', 'Prefetch', 'In flight', 'Connected'].map((x, i) =>
      h('th', { scope: 'col', class: i >= 3 && i <= 4 ? 'num' : '' }, x)))), consumerBody);

  const actions = h('div', { class: 'actions' });
  if (canManage()) {
    const purge = h('button', { type: 'button', class: 'button', testid: 'purge-topic' }, 'Purge');
    const del = h('button', { type: 'button', class: 'button button-danger', testid: 'delete-topic' }, 'Delete topic');
    purge.addEventListener('click', () => purgeFlow());
    del.addEventListener('click', () => deleteFlow());
    actions.append(purge, del);
  }

  const browser = messageBrowser(name, path);
  const root = h('section', { class: 'page', testid: 'topic-page', 'data-topic': name },
    h('div', { class: 'crumbs' }, h('a', { href: '#/topics', testid: 'back-to-topics' }, 'Topics'), ' / '),
    h('div', { class: 'page-head' }, h('h1', { testid: 'topic-name', class: 'topic-title' }, name), actions),
    counters,
    h('div', { class: 'two-col' },
      h('section', { class: 'panel' }, h('h2', {}, 'Settings'), settings),
      h('section', { class: 'panel' }, rateChart.el)),
    h('section', { class: 'panel' }, h('h2', {}, 'Consumer groups'), h('div', { class: 'table-wrap' }, groupsTable)),
    h('section', { class: 'panel' }, h('h2', {}, 'Consumers'), h('div', { class: 'table-wrap' }, consumersTable)),
    browser.el);
  setMain(root);

  function groupRow(g) {
    const row = h('tr', { testid: 'group-row' });
    row._cells = {};
    for (const [k] of GROUP_COLUMNS) {
      const td = h('td', { class: k === 'name' || k === 'ordering' ? '' : 'num', testid: `group-${k}` });
      row._cells[k] = td;
      row.append(td);
    }
    if (canManage()) {
      const mk = (testid, label, cls, fn) => {
        const b = h('button', { type: 'button', class: `button button-small ${cls}`, testid, title: testid === 'group-delete' ? 'Delete this group' : `Reset this group: ${label.toLowerCase()}` }, label);
        b.addEventListener('click', () => fn(row.dataset.name));
        return b;
      };
      row.append(h('td', { class: 'row-actions' },
        mk('group-reset-earliest', 'To earliest', '', (gname) => resetGroupFlow(gname, 'earliest')),
        mk('group-reset-latest', 'To latest', '', (gname) => resetGroupFlow(gname, 'latest')),
        mk('group-delete', 'Delete', 'button-danger', (gname) => deleteGroupFlow(gname))));
    }
    return row;
  }

  function updateGroupRow(row, g) {
    const cl = row._cells;
    row.dataset.name = g.name;
    cl.name.textContent = g.name;
    cl.ordering.textContent = g.ordering === 'key' || g.ordering === 'keyOrdered' ? 'by key' : String(g.ordering ?? 'none');
    if (Array.isArray(g.filter) && g.filter.length) cl.name.title = `filter: ${g.filter.join(', ')}`;
    setValue(cl.position, fmtInt(g.position), g.position);
    setValue(cl.ack_floor, fmtInt(g.ack_floor), g.ack_floor);
    setValue(cl.pending, fmtInt(g.pending), g.pending);
    setValue(cl.lag, fmtInt(g.lag_messages), g.lag_messages);
    const lagSeconds = (Number(g.lag_ms) || 0) / 1000;
    setValue(cl['lag-seconds'], lagSeconds.toFixed(lagSeconds >= 100 ? 0 : 1), lagSeconds);
    setValue(cl.delivered, fmtInt(g.delivered), g.delivered);
    setValue(cl.acked, fmtInt(g.acked), g.acked);
    setValue(cl.nacked, fmtInt(g.nacked), g.nacked);
    setValue(cl.redelivered, fmtInt(g.redelivered), g.redelivered);
    setValue(cl['dead-lettered'], fmtInt(g.dead_lettered), g.dead_lettered);
    const n = Array.isArray(g.consumers) ? g.consumers.length : 0;
    setValue(cl.consumers, fmtInt(n), n);
  }

  function show(t) {
    lastTopic = t;
    setValue(c.messages, fmtInt(t.messages), t.messages);
    setValue(c.bytes, fmtBytes(t.bytes), t.bytes);
    c.bytes.title = `${fmtInt(t.bytes)} bytes`;
    setValue(c['first-offset'], fmtInt(t.first_offset), t.first_offset);
    setValue(c['last-offset'], fmtInt(t.last_offset), t.last_offset);
    setValue(c['published-total'], fmtInt(t.published_total), t.published_total);
    setValue(c['publish-rate'], fmtRate(t.publish_rate), t.publish_rate);
    setValue(c.expired, fmtInt(t.expired), t.expired);
    setValue(c.scheduled, fmtInt(t.scheduled), t.scheduled);
    setValue(c['key-blocked'], fmtInt(t.key_blocked), t.key_blocked);
    setValue(c.created, fmtTime(t.created), t.created);
    const st = t.settings || {};
    for (const [key, , fmt] of SETTING_LABELS) setValue(settingValues[key], fmt(st[key]), JSON.stringify(st[key] ?? null));

    const now = Date.now();
    if (typeof t.published_total === 'number') {
      const lastSample = rateSamples[rateSamples.length - 1];
      if (lastSample && t.published_total < lastSample.total) rateSamples.length = 0;
      rateSamples.push({ t: now, total: t.published_total });
      while (rateSamples.length > 451) rateSamples.shift();
    }
    const times = [];
    const rates = [];
    for (let i = 1; i < rateSamples.length; i += 1) {
      const dt = (rateSamples[i].t - rateSamples[i - 1].t) / 1000;
      times.push(rateSamples[i].t);
      rates.push(dt > 0 ? (rateSamples[i].total - rateSamples[i - 1].total) / dt : 0);
    }
    rateChart.update(times, [rates]);

    const groups = Array.isArray(t.groups) ? t.groups : [];
    if (groups.length === 0) emptyRow(groupBody, GROUP_COLUMNS.length + (canManage() ? 1 : 0), 'No consumer groups.', 'groups-empty');
    else syncRows(groupBody, groups, (g) => g.name, groupRow, updateGroupRow);
    const consumers = [];
    for (const g of groups) for (const x of g.consumers || []) consumers.push({ group: g.name, ...x });
    if (consumers.length === 0) emptyRow(consumerBody, 6, 'No consumers connected.', 'consumers-empty');
    else {
      syncRows(consumerBody, consumers, (x) => `${x.group}\u0000${x.id}`, () => {
        const row = h('tr', { testid: 'consumer-row' });
        row._cells = ['group', 'id', 'peer', 'prefetch', 'in_flight', 'connected'].map((k) =>
          h('td', { testid: `consumer-${k.replace('_', '-')}`, class: k === 'prefetch' || k === 'in_flight' ? 'num' : '' }));
        row.append(...row._cells);
        return row;
      }, (row, x) => {
        const [group, id, peer, prefetch, inFlight, connected] = row._cells;
        group.textContent = x.group;
        id.textContent = String(x.id ?? '');
        peer.textContent = String(x.peer ?? '');
        setValue(prefetch, fmtInt(x.prefetch), x.prefetch);
        setValue(inFlight, fmtInt(x.in_flight), x.in_flight);
        connected.textContent = typeof x.connected === 'number' ? fmtTime(x.connected) : fmtTime(x.connected);
      });
    }
    root.dataset.loaded = 'true';
  }

  const poll = new Poller(async () => {
    let t;
    try {
      t = await api('GET', path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        poll.stop();
        setMain(h('section', { class: 'page', testid: 'topic-missing' },
          h('h1', {}, 'Topic not found'),
          h('p', {}, 'No topic is named ', h('code', {}, name), '. ', h('a', { href: '#/topics' }, 'Back to topics'))));
        return;
      }
      throw err;
    }
    if (stopped) return;
    show(t);
    clearStatus('poll');
    if (!loadedOnce) {
      loadedOnce = true;
      browser.initial(t);
    }
  }, POLL_MS, pollError);

  async function purgeFlow() {
    const n = lastTopic ? lastTopic.messages : null;
    const ok = await openModal({
      title: `Purge topic "${name}"?`,
      action: 'purge-topic',
      danger: true,
      body: [h('p', {}, 'This removes every message of ', h('strong', { testid: 'confirm-subject' }, name),
        n === null ? '' : ` (${fmtInt(n)} now)`,
        '. Offsets keep counting; the topic, its settings and its consumer groups stay.')],
      confirmLabel: 'Purge messages',
    });
    if (!ok) {
      showStatus('info', `Cancelled: topic "${name}" was not purged.`);
      return;
    }
    try {
      const r = await api('POST', `${path}/purge`, {});
      showStatus('success', `Purged ${fmtInt(r.purged)} message${r.purged === 1 ? '' : 's'} from "${name}".`);
    } catch (err) {
      showError(err, `Purge "${name}" failed`);
    }
    await poll.refresh();
    browser.reload();
  }

  async function deleteFlow() {
    const n = lastTopic ? lastTopic.messages : null;
    const g = lastTopic && Array.isArray(lastTopic.groups) ? lastTopic.groups.length : null;
    const ok = await openModal({
      title: `Delete topic "${name}"?`,
      action: 'delete-topic',
      danger: true,
      requireText: name,
      body: [h('p', {}, 'This deletes the topic ', h('strong', { testid: 'confirm-subject' }, name),
        ' with ', n === null ? 'all its messages' : `its ${fmtInt(n)} message${n === 1 ? '' : 's'}`,
        ' and ', g === null ? 'its consumer groups' : `its ${fmtInt(g)} consumer group${g === 1 ? '' : 's'}`,
        '. This cannot be undone.')],
      confirmLabel: 'Delete topic',
    });
    if (!ok) {
      showStatus('info', `Cancelled: topic "${name}" was not deleted.`);
      return;
    }
    stopped = true;
    await poll.stop(); // no refresh may ask for the topic once it is gone
    try {
      const r = await api('DELETE', path);
      showStatus('success', `Deleted topic "${r.deleted || name}" and its ${fmtInt(r.messages)} message${r.messages === 1 ? '' : 's'}.`);
      location.hash = '#/topics';
    } catch (err) {
      showError(err, `Delete "${name}" failed`);
      stopped = false;
      poll.restart();
    }
  }

  async function resetGroupFlow(group, to) {
    const g = lastTopic && (lastTopic.groups || []).find((x) => x.name === group);
    const ok = await openModal({
      title: `Reset group "${group}" to ${to}?`,
      action: `reset-group-${to}`,
      danger: true,
      body: [h('p', {}, 'This moves consumer group ', h('strong', { testid: 'confirm-subject' }, group),
        ' of topic ', h('strong', {}, name), to === 'earliest'
          ? ' back to the earliest retained message: it receives every message of the topic again.'
          : ' to the end of the topic: it skips every message published so far.',
        g ? ` It forgets its ${fmtInt(g.pending)} pending message${g.pending === 1 ? '' : 's'}.` : ' It forgets its pending messages.',
        ' No consumer may be connected to it.')],
      confirmLabel: `Reset to ${to}`,
    });
    if (!ok) {
      showStatus('info', `Cancelled: group "${group}" was not reset.`);
      return;
    }
    try {
      const r = await api('POST', `${path}/groups/${enc(group)}/reset`, { to });
      showStatus('success', `Reset group "${group}" to ${to}: position ${fmtInt(r.position)}, lag ${fmtInt(r.lag_messages)}.`);
    } catch (err) {
      showError(err, `Reset group "${group}" failed`);
    }
    await poll.refresh();
  }

  async function deleteGroupFlow(group) {
    const g = lastTopic && (lastTopic.groups || []).find((x) => x.name === group);
    const ok = await openModal({
      title: `Delete group "${group}"?`,
      action: 'delete-group',
      danger: true,
      body: [h('p', {}, 'This deletes consumer group ', h('strong', { testid: 'confirm-subject' }, group),
        ' of topic ', h('strong', {}, name),
        g ? ` and its ${fmtInt(g.pending)} pending message${g.pending === 1 ? '' : 's'}` : ' and its pending messages',
        '. The topic\u2019s messages stay.')],
      confirmLabel: 'Delete group',
    });
    if (!ok) {
      showStatus('info', `Cancelled: group "${group}" was not deleted.`);
      return;
    }
    try {
      const r = await api('DELETE', `${path}/groups/${enc(group)}`);
      showStatus('success', `Deleted group "${r.deleted || group}" (${fmtInt(r.pending)} pending).`);
    } catch (err) {
      showError(err, `Delete group "${group}" failed`);
    }
    await poll.refresh();
  }

  return {
    stop: () => {
      stopped = true;
      browser.stop();
      return poll.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Message browser

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

function payloadOf(m) {
  if (typeof m.payload === 'string') return { text: m.payload, bytes: new TextEncoder().encode(m.payload), binary: false };
  if (typeof m.payload_base64 === 'string') {
    const bytes = b64ToBytes(m.payload_base64);
    return { text: new TextDecoder('utf-8', { fatal: false }).decode(bytes), bytes, binary: true };
  }
  return { text: '', bytes: new Uint8Array(0), binary: false };
}

const HEX_LIMIT = 64 * 1024;

function hexView(bytes) {
  const lines = [];
  const n = Math.min(bytes.length, HEX_LIMIT);
  for (let i = 0; i < n; i += 16) {
    const chunk = bytes.subarray(i, Math.min(i + 16, n));
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(chunk, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(h('span', { class: 'hex-line' },
      h('span', { class: 'hex-addr' }, i.toString(16).padStart(8, '0')), '  ',
      h('span', { class: 'hex-bytes' }, hex.padEnd(47, ' ')), '  ',
      h('span', { class: 'hex-ascii' }, ascii), '\n'));
  }
  if (bytes.length > n) lines.push(h('span', { class: 'muted' }, `\u2026 ${fmtInt(bytes.length - n)} more bytes`));
  if (bytes.length === 0) lines.push(h('span', { class: 'muted' }, '(empty)'));
  return lines;
}

function localInputValue(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function messageBrowser(topicName, path) {
  const st = { format: 'text', messages: [], nextOffset: null, limit: 20, seq: 0, stopped: false, last: null };
  const modeOffset = h('input', { type: 'radio', name: 'browse-mode', value: 'offset', testid: 'browse-mode-offset', checked: true });
  const modeTime = h('input', { type: 'radio', name: 'browse-mode', value: 'time', testid: 'browse-mode-time' });
  const offset = h('input', { type: 'number', class: 'input input-num', min: 0, step: 1, testid: 'browse-offset', 'aria-label': 'from offset' });
  const time = h('input', { type: 'datetime-local', class: 'input', step: 1, testid: 'browse-time', 'aria-label': 'from time' });
  const limit = h('input', { type: 'number', class: 'input input-num', min: 1, max: 1000, step: 1, value: st.limit, testid: 'browse-limit', 'aria-label': 'limit' });
  const load = h('button', { type: 'submit', class: 'button button-primary', testid: 'browse-load' }, 'Load');
  const nextPage = h('button', { type: 'button', class: 'button', testid: 'browse-next', disabled: true }, 'Next page \u2192');
  const formats = {};
  const formatBar = h('div', { class: 'segmented', role: 'group', 'aria-label': 'payload format' });
  for (const [key, label] of [['text', 'Text'], ['json', 'JSON'], ['hex', 'Hex']]) {
    const b = h('button', { type: 'button', class: 'seg', testid: `format-${key}`, 'aria-pressed': String(key === st.format) }, label);
    b.addEventListener('click', () => {
      st.format = key;
      for (const [k, x] of Object.entries(formats)) x.setAttribute('aria-pressed', String(k === key));
      list.dataset.format = key;
      renderList();
    });
    formats[key] = b;
    formatBar.append(b);
  }
  const info = h('span', { class: 'muted', testid: 'browse-info' });
  const list = h('div', { class: 'messages', testid: 'messages', 'data-format': st.format });
  const form = h('form', { class: 'browse-form', testid: 'browse-form' },
    h('label', { class: 'inline' }, modeOffset, ' from offset'), offset,
    h('label', { class: 'inline' }, modeTime, ' from time'), time,
    h('label', { class: 'inline' }, 'limit'), limit, load, nextPage);
  offset.addEventListener('focus', () => { modeOffset.checked = true; });
  time.addEventListener('focus', () => { modeTime.checked = true; });
  time.addEventListener('input', () => { modeTime.checked = true; });
  const el = h('section', { class: 'panel', testid: 'message-browser' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Messages'), formatBar), form, info, list);

  function limitValue() {
    const n = Math.floor(Number(limit.value));
    return Number.isFinite(n) && n >= 1 ? Math.min(n, 1000) : 20;
  }

  async function fetchMessages(q) {
    const my = ++st.seq;
    st.last = q;
    list.dataset.loading = 'true';
    try {
      const r = await api('GET', `${path}/messages${query(q)}`);
      if (my !== st.seq || st.stopped) return;
      st.messages = Array.isArray(r.messages) ? r.messages : [];
      st.nextOffset = typeof r.next_offset === 'number' ? r.next_offset : null;
      nextPage.disabled = st.nextOffset === null;
      const from = q.from_offset !== undefined ? `offset ${fmtInt(q.from_offset)}` : `time ${fmtTime(q.from_time)}`;
      info.textContent = st.messages.length
        ? `${fmtInt(st.messages.length)} message${st.messages.length === 1 ? '' : 's'} from ${from}; next offset ${st.nextOffset === null ? EN_DASH : fmtInt(st.nextOffset)}`
        : `No messages from ${from}.`;
      list.dataset.query = query(q);
      renderList();
    } catch (err) {
      if (my === st.seq) showError(err, 'Loading messages failed');
    } finally {
      if (my === st.seq) delete list.dataset.loading;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (modeTime.checked) {
      const ms = new Date(time.value).getTime();
      if (!time.value || Number.isNaN(ms)) {
        showStatus('error', 'Pick a date and time to browse from.');
        return;
      }
      fetchMessages({ from_time: ms, limit: limitValue() });
    } else {
      const n = Math.floor(Number(offset.value || '0'));
      if (!Number.isFinite(n) || n < 0) {
        showStatus('error', 'The offset must be a whole number.');
        return;
      }
      fetchMessages({ from_offset: n, limit: limitValue() });
    }
  });
  nextPage.addEventListener('click', () => {
    if (st.nextOffset === null) return;
    modeOffset.checked = true;
    offset.value = String(st.nextOffset);
    fetchMessages({ from_offset: st.nextOffset, limit: limitValue() });
  });

  function renderPayload(m) {
    const p = payloadOf(m);
    const pre = h('pre', { class: 'payload', testid: 'message-payload', 'data-format': st.format, 'data-bytes': p.bytes.length });
    if (st.format === 'hex') {
      pre.append(...hexView(p.bytes));
    } else if (st.format === 'json') {
      try {
        if (p.binary) throw new Error('binary');
        pre.textContent = JSON.stringify(JSON.parse(p.text), null, 2);
        pre.dataset.json = 'true';
      } catch {
        pre.textContent = p.text;
        pre.dataset.json = 'false';
      }
    } else {
      pre.textContent = p.text;
    }
    return { pre, p };
  }

  function renderList() {
    if (st.messages.length === 0) {
      list.replaceChildren(h('p', { class: 'muted', testid: 'messages-empty' }, 'No messages to show.'));
      return;
    }
    list.replaceChildren(...st.messages.map((m) => {
      const { pre, p } = renderPayload(m);
      const meta = h('div', { class: 'message-meta' },
        h('span', { class: 'offset', testid: 'message-offset', 'data-value': m.offset }, `#${fmtInt(m.offset)}`),
        h('span', { testid: 'message-time', title: String(m.timestamp_ms ?? '') }, fmtTime(m.timestamp_ms ?? m.timestamp)));
      const tag = (label, value, testid) => h('span', { class: 'tag', testid }, h('span', { class: 'tag-k' }, label), String(value));
      if (typeof m.key === 'string') meta.append(tag('key', m.key, 'message-key'));
      else if (typeof m.key_base64 === 'string') meta.append(tag('key (base64)', m.key_base64, 'message-key'));
      if (m.subject) meta.append(tag('subject', m.subject, 'message-subject'));
      if (m.id !== null && m.id !== undefined) meta.append(tag('id', m.id, 'message-id'));
      if (m.deliver_at_ms) meta.append(tag('deliver at', fmtTime(m.deliver_at_ms), 'message-deliver-at'));
      if (m.expires_at_ms) meta.append(tag('expires', fmtTime(m.expires_at_ms), 'message-expires-at'));
      meta.append(h('span', { class: 'muted' }, `${fmtInt(p.bytes.length)} bytes${p.binary ? ', binary' : ''}`));
      if (p.binary && st.format !== 'hex') meta.append(h('span', { class: 'tag tag-warn' }, 'not UTF-8: shown with replacement characters'));
      if (st.format === 'json' && pre.dataset.json === 'false') meta.append(h('span', { class: 'tag tag-warn', testid: 'not-json' }, 'not JSON'));
      const headers = m.headers && typeof m.headers === 'object' ? Object.entries(m.headers) : [];
      const headerList = headers.length
        ? h('dl', { class: 'message-headers', testid: 'message-headers' }, headers.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, String(v)))))
        : null;
      return h('article', { class: 'message', testid: 'message', 'data-offset': m.offset }, meta, headerList, pre);
    }));
  }

  return {
    el,
    initial(t) {
      const first = typeof t.first_offset === 'number' && t.first_offset > 0 ? t.first_offset : 0;
      offset.value = String(first);
      if (typeof t.created === 'string' || typeof t.created === 'number') {
        const created = new Date(t.created).getTime();
        if (!Number.isNaN(created)) time.value = localInputValue(created);
      }
      if (t.messages > 0) fetchMessages({ from_offset: first, limit: limitValue() });
      else {
        info.textContent = 'The topic holds no messages.';
        renderList();
      }
    },
    reload() {
      if (st.last) fetchMessages(st.last);
    },
    stop() {
      st.stopped = true;
    },
  };
}

boot();
