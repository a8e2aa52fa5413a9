#!/usr/bin/env node
// Real-browser test of the Sluice web console (broker/ui), served by a real sluiced.
//
//   node tests/browser/console_test.mjs --sluiced PATH --sluice PATH --out DIR
//       [--chromium /usr/bin/chromium] [--topics 10000] [--ui-dir broker/ui] [--keep]
//       [--page-limit-ms 1000]   (a looser bound for sanitizer builds, which are slow)
//
// --ui-dir serves the console's files from that directory (through a same-origin proxy that
// keeps the broker's answers and headers), to try console changes without rebuilding sluiced.
//
// Starts brokers on 127.0.0.1 port 0 with a temporary store, fills them with the CLI and the HTTP
// API, drives the console in Chromium (playwright-core, no browser download) and checks what it
// shows against `sluice ... --json`. Exits 0 when every check passed, 1 otherwise (the failing
// check is printed), 2 on a usage error. Screenshots go to --out.

import { chromium } from 'playwright-core';
import { spawn, execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createWriteStream } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile, access, readFile } from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

// ---------------------------------------------------------------------------------------------
// Arguments

function usage(message) {
  if (message) process.stderr.write(`console_test: ${message}\n`);
  process.stderr.write('usage: node console_test.mjs --sluiced PATH --sluice PATH --out DIR ' +
    '[--chromium PATH] [--topics N] [--ui-dir DIR] [--keep] [--page-limit-ms 1000]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { chromium: '/usr/bin/chromium', topics: 10000, keep: false, pageLimitMs: 1000 };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    if (a === '--sluiced') opts.sluiced = path.resolve(value());
    else if (a === '--sluice') opts.sluice = path.resolve(value());
    else if (a === '--out') opts.out = path.resolve(value());
    else if (a === '--chromium') opts.chromium = value();
    else if (a === '--topics') opts.topics = Number(value());
    else if (a === '--ui-dir') opts.uiDir = path.resolve(value());
    else if (a === '--keep') opts.keep = true;
    else if (a === '--page-limit-ms') opts.pageLimitMs = Number(value());
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!opts.sluiced || !opts.sluice || !opts.out) usage('--sluiced, --sluice and --out are required');
  if (!Number.isInteger(opts.topics) || opts.topics < 100) usage('--topics must be an integer >= 100');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------------------------
// Reporting

const started = Date.now();
let checks = 0;

function log(message) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${s}s] ${message}\n`);
}

class CheckFailed extends Error {}

function check(condition, message) {
  checks += 1;
  if (!condition) throw new CheckFailed(message);
}

function equal(actual, expected, what) {
  checks += 1;
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new CheckFailed(`${what}: expected ${e}, got ${a}`);
}

// ---------------------------------------------------------------------------------------------
// Processes: brokers and the CLI

const children = new Set();

// The broker and CLI read SLUICE_* variables above their flags: give them none of the caller's.
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  return { ...env, ...extra };
}

async function startBroker(name, { auth = false, adminToken = null } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `sluice-console-${name}-`));
  const args = ['--data', path.join(dir, 'data'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
  if (auth) args.push('--auth');
  const env = cleanEnv(adminToken ? { SLUICE_ADMIN_TOKEN: adminToken } : {});
  const logPath = path.join(opts.out, `${name}.log`);
  const logFile = createWriteStream(logPath);
  const child = spawn(opts.sluiced, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stderr.pipe(logFile);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
  const ready = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const deadline = setTimeout(() => reject(new Error(`${name}: no "ready" line within 30 s (log: ${logPath})`)), 30000);
    lines.on('line', (line) => {
      logFile.write(`[stdout] ${line}\n`);
      const m = /^ready rpc=(\d+) admin=(\d+)/.exec(line);
      if (m) {
        clearTimeout(deadline);
        resolve({ rpc: Number(m[1]), admin: Number(m[2]) });
      }
    });
    child.once('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(deadline);
      reject(new Error(`${name}: sluiced exited (code ${code}, signal ${signal}) before it was ready; log: ${logPath}`));
    });
  });
  log(`${name}: sluiced ready rpc=${ready.rpc} admin=${ready.admin}${auth ? ' (auth on)' : ''}`);
  const broker = {
    name, dir, child, exited, adminToken, ...ready,
    base: `http://127.0.0.1:${ready.admin}`,
    uiBase: `http://127.0.0.1:${ready.admin}`,
    proxy: null,
    async stop() {
      if (this.proxy) await new Promise((r) => this.proxy.close(r));
      this.proxy = null;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
      if (!opts.keep) await rm(dir, { recursive: true, force: true });
    },
  };
  if (opts.uiDir) {
    broker.proxy = await startUiProxy(broker.admin, opts.uiDir);
    broker.uiBase = `http://127.0.0.1:${broker.proxy.address().port}`;
    log(`${name}: console files from ${opts.uiDir} through ${broker.uiBase}`);
  }
  return broker;
}

// Passes every request to the broker's admin port unchanged (Host and Origin name the proxy, so
// the broker's same-origin checks hold) and, for a /ui/ file it serves, answers the file from
// `dir` instead, with the broker's status and headers.
async function startUiProxy(adminPort, dir) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const up = http.request({ host: '127.0.0.1', port: adminPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const m = /^\/ui\/([A-Za-z0-9._-]*)(?:\?.*)?$/.exec(req.url);
        const headers = { ...answer.headers };
        if (m && answer.statusCode === 200 && !m[1].startsWith('.')) {
          answer.resume();
          readFile(path.join(dir, m[1] || 'index.html')).then((data) => {
            delete headers['transfer-encoding'];
            headers['content-length'] = String(data.length);
            res.writeHead(200, headers);
            res.end(data);
          }, () => {
            res.writeHead(404);
            res.end();
          });
          return;
        }
        res.writeHead(answer.statusCode, headers);
        answer.pipe(res);
      });
      up.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function runCli(broker, args, { json = true, token = null, allowFail = false } = {}) {
  const fullArgs = ['--broker', `127.0.0.1:${broker.rpc}`, ...(json ? ['--json'] : []), ...args];
  const tok = token ?? broker.adminToken;
  const env = cleanEnv(tok ? { SLUICE_TOKEN: tok } : {});
  return new Promise((resolve, reject) => {
    execFile(opts.sluice, fullArgs, { env, timeout: 60000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (code !== 0 && !allowFail) {
        const why = code === -1 ? `could not run: ${err.message}` : `exited ${code}: ${stderr.trim()}`;
        reject(new Error(`sluice ${fullArgs.join(' ')} ${why}`));
        return;
      }
      let parsed;
      if (json && code === 0 && stdout.trim()) {
        try {
          parsed = JSON.parse(stdout);
        } catch {
          parsed = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)); // NDJSON
        }
      }
      resolve({ code, stdout, stderr, json: parsed });
    });
  });
}

async function cliJson(broker, args, options) {
  return (await runCli(broker, args, options)).json;
}

async function topicExists(broker, name) {
  const r = await runCli(broker, ['topics', 'describe', name], { allowFail: true });
  if (r.code === 0) return true;
  if (/topicNotFound/.test(r.stderr)) return false;
  throw new Error(`sluice topics describe ${name}: exit ${r.code}: ${r.stderr.trim()}`);
}

async function httpApi(broker, method, apiPath, body, token = broker.adminToken) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${broker.base}/api/v1${apiPath}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  return { status: res.status, data, text };
}

// ---------------------------------------------------------------------------------------------
// Browser helpers

const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Collects everything that must not happen on a page: console errors, uncaught exceptions,
// failed requests and HTTP error answers. `expect(fn)` lets one step tolerate named answers.
function watch(page, label) {
  const w = { problems: [], label, allowed: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') w.problems.push(`console error: ${m.text()} (${m.location().url || ''})`);
  });
  page.on('pageerror', (e) => w.problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => w.problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) w.problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  return w;
}

function clean(w, where) {
  const problems = w.problems.splice(0);
  check(problems.length === 0, `${where}: ${problems.length} console/page/network problem(s):\n  ${problems.join('\n  ')}`);
}

const byTestId = (id) => `[data-testid="${id}"]`;

async function shot(page, name) {
  await page.screenshot({ path: path.join(opts.out, `${name}.png`), fullPage: true });
}

// Waits until the element's data-value equals `expected` (the page refreshes every 2 s).
async function expectValue(page, selector, expected, what, timeout = 7000) {
  try {
    await page.waitForFunction(([sel, exp]) => {
      const el = document.querySelector(sel);
      return el !== null && el.dataset.value === exp;
    }, [selector, String(expected)], { timeout, polling: 100 });
  } catch {
    const actual = await page.$eval(selector, (el) => el.dataset.value).catch(() => '(element missing)');
    throw new CheckFailed(`${what}: expected ${expected}, the page shows ${actual}`);
  }
  checks += 1;
}

async function rowNames(page) {
  return page.$$eval('[data-testid="topic-row"]', (rows) => rows.map((r) => r.dataset.name));
}

async function waitRows(page, expected, timeout = 5000) {
  await page.waitForFunction((names) => {
    const rows = Array.from(document.querySelectorAll('[data-testid="topic-row"]')).map((r) => r.dataset.name);
    return rows.length === names.length && rows.every((n, i) => n === names[i]);
  }, expected, { timeout, polling: 'raf' });
}

// Loads the console afresh (a goto that changes only the hash would not reload it).
async function goto(page, broker, hash, readySelector) {
  if (page.url() !== 'about:blank') await page.goto('about:blank');
  await page.goto(`${broker.uiBase}/ui/${hash}`);
  if (readySelector) await page.waitForSelector(readySelector, { timeout: 10000 });
}

async function openRoute(page, hash, readySelector) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(readySelector, { timeout: 10000 });
}

async function modal(page, action) {
  await page.waitForSelector(`dialog[open]${action ? `[data-action="${action}"]` : ''}`, { timeout: 5000 });
}

async function modalClosed(page) {
  await page.waitForSelector('dialog[open]', { state: 'detached', timeout: 5000 }).catch(async () => {
    await page.waitForFunction(() => !document.querySelector('dialog[open]'), null, { timeout: 5000 });
  });
}

async function statusIs(page, kind, pattern) {
  await page.waitForFunction(([k]) => {
    const s = document.querySelector('[data-testid="status"]');
    return s && !s.hidden && s.dataset.kind === k;
  }, [kind], { timeout: 10000 }).catch(async () => {
    const s = await page.$eval('[data-testid="status"]', (el) => `${el.dataset.kind}: ${el.textContent}`).catch(() => '(none)');
    throw new CheckFailed(`expected a ${kind} status, the status area shows ${s}`);
  });
  const text = await page.textContent(byTestId('status-text'));
  check(!pattern || pattern.test(text), `status text ${JSON.stringify(text)} does not match ${pattern}`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Phase 1: a broker without authentication

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const JSON_PAYLOAD = '{"order":1,"items":[1,2],"note":"<b>not html</b>"}';
const XSS_PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
const BINARY = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41, 0x42, 0x0a]);

async function fillBroker(broker) {
  await runCli(broker, ['topics', 'create', 'orders', '--max-age', '7d'], { json: false });
  await runCli(broker, ['topics', 'create', 'events'], { json: false });
  await runCli(broker, ['topics', 'create', 'scratch'], { json: false });
  await runCli(broker, ['publish', 'orders', 'hello world'], { json: false });
  await runCli(broker, ['publish', 'orders', JSON_PAYLOAD, '--key', 'customer-7', '--header', 'source=web'], { json: false });
  const binPath = path.join(broker.dir, 'binary.bin');
  await writeFile(binPath, BINARY);
  await runCli(broker, ['publish', 'orders', '--file', binPath], { json: false });
  await runCli(broker, ['publish', 'orders', XSS_PAYLOAD], { json: false });
  // The fifth message is published in a later wall-clock second than the first four, so that
  // browsing "from time" (whole seconds in the form) can start exactly at it.
  const four = await cliJson(broker, ['peek', 'orders', '--from', '4', '--count', '1']);
  const t4 = (Array.isArray(four) ? four[0] : four).timestamp_ms;
  const boundary = Math.floor(t4 / 1000) * 1000 + 1000;
  while (Date.now() < boundary + 20) await sleep(Math.max(5, boundary + 20 - Date.now()));
  await runCli(broker, ['publish', 'orders', 'late message'], { json: false });
  await runCli(broker, ['publish', 'events', 'e', '--count', '3'], { json: false });
  await runCli(broker, ['publish', 'scratch', 's', '--count', '5'], { json: false });
  await runCli(broker, ['groups', 'create', 'orders', 'billing', '--from', 'earliest']);
  await runCli(broker, ['groups', 'create', 'orders', 'audit', '--from', 'latest']);
  await runCli(broker, ['groups', 'create', 'events', 'ingest']);
  return { fromTimeMs: boundary };
}

// The value a datetime-local input holds for `ms`, in the normalized form the browser keeps: the
// seconds are left out when they are zero (HTML's "valid normalized local date and time string"),
// so that filling it reads back the same.
function localInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const minutes = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  return d.getSeconds() === 0 ? minutes : `${minutes}:${p(d.getSeconds())}`;
}

async function checkApiAnswers(broker) {
  const who = await httpApi(broker, 'GET', '/whoami');
  check(who.status === 200 && who.data && typeof who.data.auth === 'boolean',
    `GET /api/v1/whoami: expected 200 JSON with "auth", got ${who.status} ${who.text.slice(0, 200)}`);
  const ui = await fetch(`${broker.base}/ui/`);
  const body = await ui.text();
  check(ui.status === 200 && body.includes('/ui/app.js'), `GET /ui/: expected the console's index.html, got ${ui.status}`);
  const csp = ui.headers.get('content-security-policy') || '';
  check(/script-src 'self'/.test(csp), `GET /ui/: Content-Security-Policy is ${JSON.stringify(csp)}`);
  // The files next to this test, to say whether the binary embeds the console as checked out.
  const uiDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../broker/ui');
  const stale = [];
  for (const asset of ['index.html', 'app.js', 'style.css', 'favicon.svg']) {
    const r = await fetch(`${broker.base}/ui/${asset}`);
    check(r.status === 200, `GET /ui/${asset}: ${r.status}`);
    const served = Buffer.from(await r.arrayBuffer());
    const onDisk = await readFile(path.join(uiDir, asset)).catch(() => null);
    if (onDisk && !onDisk.equals(served)) stale.push(asset);
  }
  if (stale.length) {
    log(`note: the binary's ${stale.join(', ')} differ from ${uiDir} (rebuild sluiced${opts.uiDir ? '' : ', or pass --ui-dir'})`);
  }
}

async function overviewChecks(page, w, broker) {
  await goto(page, broker, '#/', '[data-testid="overview"][data-loaded="true"]');
  const stats = await cliJson(broker, ['stats']);
  await expectValue(page, byTestId('stat-messages'), stats.messages, 'overview messages vs sluice stats');
  await expectValue(page, byTestId('stat-bytes'), stats.bytes, 'overview bytes vs sluice stats');
  await expectValue(page, byTestId('stat-topics'), stats.topics, 'overview topics vs sluice stats');
  await expectValue(page, byTestId('stat-version'), stats.version, 'overview version vs sluice stats');
  const limit = await page.$eval(byTestId('stat-storage-sub'), (el) => el.dataset.limit);
  equal(Number(limit), stats.storage_limit, 'overview storage limit vs sluice stats');
  const msgText = await page.textContent(byTestId('stat-messages'));
  equal(Number(msgText.replace(/,/g, '')), stats.messages, 'overview messages as text');
  for (const chart of ['chart-rates', 'chart-storage', 'chart-connections', 'chart-latency']) {
    check(await page.$(`${byTestId(chart)} svg`), `overview: chart ${chart} has no SVG`);
  }
  // History samples arrive once a second: wait for at least two points in the charts.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-storage"] svg').dataset.points) >= 2,
    null, { timeout: 10000 });
  check(await page.$('[data-testid="chart-rates"] polyline'), 'overview: the rate chart draws no line');
  await shot(page, 'overview');
  clean(w, 'overview');
  log(`overview: messages=${stats.messages} bytes=${stats.bytes} topics=${stats.topics} match sluice stats`);
}

async function topicsTableChecks(page, w, broker) {
  await openRoute(page, '#/topics', '[data-testid="topics"][data-loaded="true"]');
  const listed = (await cliJson(broker, ['topics', 'list'])).topics;
  const expected = listed.map((t) => t.name).sort();
  equal(await rowNames(page), expected, 'topics table rows (name ascending) vs sluice topics list');
  for (const t of listed) {
    const row = `[data-testid="topic-row"][data-name="${t.name}"]`;
    await expectValue(page, `${row} [data-testid="col-messages"]`, t.messages, `topics table ${t.name} messages`);
    await expectValue(page, `${row} [data-testid="col-bytes"]`, t.bytes, `topics table ${t.name} bytes`);
    await expectValue(page, `${row} [data-testid="col-groups"]`, t.groups.length, `topics table ${t.name} groups`);
    const maxLag = t.groups.reduce((m, g) => Math.max(m, g.lag_messages), 0);
    await expectValue(page, `${row} [data-testid="col-lag"]`, maxLag, `topics table ${t.name} max lag`);
    const href = await page.getAttribute(`${row} [data-testid="topic-link"]`, 'href');
    equal(href, `#/topics/${encodeURIComponent(t.name)}`, `topics table ${t.name} link`);
  }
  const info = await page.textContent(byTestId('page-info'));
  equal(info, `1\u2013${listed.length} of ${listed.length}`, 'topics page info');
  check(await page.isVisible(byTestId('create-topic')), 'topics: no "Create topic" button for a manager');
  await shot(page, 'topics');
  clean(w, 'topics table');
  log(`topics table: ${listed.length} rows match sluice topics list`);
}

async function topicPageChecks(page, w, broker, fromTimeMs) {
  await page.click('[data-testid="topic-row"][data-name="orders"] [data-testid="topic-link"]');
  await page.waitForSelector('[data-testid="topic-page"][data-topic="orders"][data-loaded="true"]');
  const d = await cliJson(broker, ['topics', 'describe', 'orders']);
  await expectValue(page, byTestId('topic-messages'), d.messages, 'topic page messages vs describe');
  await expectValue(page, byTestId('topic-bytes'), d.bytes, 'topic page bytes vs describe');
  await expectValue(page, byTestId('topic-first-offset'), d.first_offset, 'topic page first offset');
  await expectValue(page, byTestId('topic-last-offset'), d.last_offset, 'topic page last offset');
  await expectValue(page, byTestId('topic-published-total'), d.published_total, 'topic page published total');
  await expectValue(page, byTestId('setting-max_age_ms'), JSON.stringify(d.settings.max_age_ms), 'topic page max age setting');
  const groupsShown = await page.$$eval('[data-testid="group-row"]', (rows) => rows.map((r) => r.dataset.name).sort());
  equal(groupsShown, d.groups.map((g) => g.name).sort(), 'topic page groups vs describe');
  for (const g of d.groups) {
    const row = `[data-testid="group-row"][data-name="${g.name}"]`;
    await expectValue(page, `${row} [data-testid="group-lag"]`, g.lag_messages, `group ${g.name} lag (messages)`);
    await expectValue(page, `${row} [data-testid="group-position"]`, g.position, `group ${g.name} position`);
    await expectValue(page, `${row} [data-testid="group-pending"]`, g.pending, `group ${g.name} pending`);
    const secs = Number(await page.$eval(`${row} [data-testid="group-lag-seconds"]`, (el) => el.dataset.value));
    // lag_ms grows while a group lags; the page and the CLI read it a poll (2 s) apart.
    check(Math.abs(secs - g.lag_ms / 1000) <= 5,
      `group ${g.name} lag seconds: page ${secs}, describe ${g.lag_ms / 1000} (more than 5 s apart)`);
  }

  // Message browser: the first page is loaded from the first offset.
  const peeked = await cliJson(broker, ['peek', 'orders', '--count', '20']);
  const msgs = Array.isArray(peeked) ? peeked : [peeked];
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length === n, msgs.length, { timeout: 5000 });
  const payloads = () => page.$$eval('[data-testid="message-payload"]', (els) => els.map((e) => e.textContent));
  const texts = await payloads();
  equal(texts[0], 'hello world', 'message 1 as text');
  equal(texts[1], JSON_PAYLOAD, 'message 2 as text');
  equal(texts[3], XSS_PAYLOAD, 'message 4 (markup) shown as text');
  equal(texts[4], 'late message', 'message 5 as text');
  check(await page.evaluate(() => window.__xss === undefined), 'a payload was executed as markup');
  check(!(await page.$('[data-testid="messages"] img, [data-testid="messages"] script')), 'a payload became elements');
  const keyShown = await page.textContent('[data-testid="message"][data-offset="2"] [data-testid="message-key"]');
  check(keyShown.includes('customer-7'), `message 2 key: ${keyShown}`);
  const headersShown = await page.textContent('[data-testid="message"][data-offset="2"] [data-testid="message-headers"]');
  check(headersShown.includes('source') && headersShown.includes('web'), `message 2 headers: ${headersShown}`);
  await shot(page, 'topic');

  await page.click(byTestId('format-json'));
  await page.waitForSelector('[data-testid="message-payload"][data-format="json"]');
  const asJson = await payloads();
  equal(asJson[1], JSON.stringify(JSON.parse(JSON_PAYLOAD), null, 2), 'message 2 as pretty JSON');
  equal(asJson[0], 'hello world', 'message 1 (not JSON) in JSON mode');
  check(await page.$('[data-testid="message"][data-offset="1"] [data-testid="not-json"]'), 'message 1 is not marked "not JSON"');
  await shot(page, 'topic-json');

  await page.click(byTestId('format-hex'));
  await page.waitForSelector('[data-testid="message-payload"][data-format="hex"]');
  const hexOf = (offset) => page.$$eval(`[data-testid="message"][data-offset="${offset}"] .hex-bytes`,
    (els) => els.map((e) => e.textContent.trim()).join(' '));
  equal(await hexOf(3), Array.from(BINARY, (b) => b.toString(16).padStart(2, '0')).join(' '), 'binary message 3 as hex');
  equal(await hexOf(1), Buffer.from('hello world').toString('hex').match(/../g).join(' '), 'message 1 as hex');
  await shot(page, 'topic-hex');
  await page.click(byTestId('format-text'));

  // Paging from an offset, then next_offset.
  const offsetsShown = () => page.$$eval('[data-testid="message"]', (els) => els.map((e) => Number(e.dataset.offset)));
  const waitQuery = (q) => page.waitForSelector(`[data-testid="messages"][data-query="${q}"]:not([data-loading])`, { timeout: 5000 });
  await page.check(byTestId('browse-mode-offset'));
  await page.fill(byTestId('browse-offset'), '1');
  await page.fill(byTestId('browse-limit'), '2');
  await page.click(byTestId('browse-load'));
  await waitQuery('?from_offset=1&limit=2');
  equal(await offsetsShown(), [1, 2], 'browse from offset 1, limit 2');
  await page.click(byTestId('browse-next'));
  await waitQuery('?from_offset=3&limit=2');
  equal(await offsetsShown(), [3, 4], 'browse next page');
  await page.click(byTestId('browse-next'));
  await waitQuery('?from_offset=5&limit=2');
  equal(await offsetsShown(), [5], 'browse last page');

  // From a time: the fifth message is the first one at or after fromTimeMs.
  await page.fill(byTestId('browse-time'), localInput(fromTimeMs));
  await page.check(byTestId('browse-mode-time'));
  await page.fill(byTestId('browse-limit'), '10');
  await page.click(byTestId('browse-load'));
  await waitQuery(`?from_time=${fromTimeMs}&limit=10`);
  equal(await offsetsShown(), [5], 'browse from time (the fifth message)');
  clean(w, 'topic page');
  log('topic page: counters, groups, lag and the message browser (text, JSON, hex, paging, time) match');
}

async function actionChecks(page, w, broker) {
  // Create a topic: form, then confirmation; cancel changes nothing.
  await openRoute(page, '#/topics', '[data-testid="topics"][data-loaded="true"]');
  const fillCreate = async () => {
    await page.click(byTestId('create-topic'));
    await modal(page, 'create-topic-form');
    await page.fill(byTestId('create-name'), 'made-in-ui');
    await page.fill(byTestId('create-max-age'), '1h');
    await page.fill(byTestId('create-max-messages'), '1000');
    await page.check(byTestId('create-work-queue'));
    await page.click(byTestId('create-next'));
    await modal(page, 'create-topic');
    equal(await page.textContent(`dialog[open] ${byTestId('confirm-subject')}`), 'made-in-ui', 'create confirmation names the topic');
  };
  await fillCreate();
  await shot(page, 'confirm-create');
  await page.click(`dialog[open] ${byTestId('cancel')}`);
  await modalClosed(page);
  check(!(await topicExists(broker, 'made-in-ui')), 'create topic: cancel created the topic');
  await fillCreate();
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /made-in-ui/);
  const made = await cliJson(broker, ['topics', 'describe', 'made-in-ui']);
  equal([made.settings.max_age_ms, made.settings.max_messages, made.settings.work_queue], [3600000, 1000, true],
    'created topic settings (max age, max messages, work queue)');
  await page.waitForSelector('[data-testid="topic-page"][data-topic="made-in-ui"][data-loaded="true"]');
  clean(w, 'create topic');
  log('action: create topic (cancel, then confirm) verified with the CLI');

  // Purge.
  await openRoute(page, '#/topics/scratch', '[data-testid="topic-page"][data-topic="scratch"][data-loaded="true"]');
  const before = (await cliJson(broker, ['topics', 'describe', 'scratch'])).messages;
  check(before === 5, `scratch should hold 5 messages, holds ${before}`);
  await page.click(byTestId('purge-topic'));
  await modal(page, 'purge-topic');
  await page.click(`dialog[open] ${byTestId('cancel')}`);
  await modalClosed(page);
  equal((await cliJson(broker, ['topics', 'describe', 'scratch'])).messages, 5, 'purge: cancel kept the messages');
  await page.click(byTestId('purge-topic'));
  await modal(page, 'purge-topic');
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /Purged 5 messages/);
  equal((await cliJson(broker, ['topics', 'describe', 'scratch'])).messages, 0, 'purge: confirm removed the messages');
  await expectValue(page, byTestId('topic-messages'), 0, 'topic page messages after purge');
  clean(w, 'purge topic');
  log('action: purge topic (cancel, then confirm) verified with the CLI');

  // Reset a group to latest, then back to earliest.
  await openRoute(page, '#/topics/orders', '[data-testid="topic-page"][data-topic="orders"][data-loaded="true"]');
  const billing = '[data-testid="group-row"][data-name="billing"]';
  const lagOf = async () => (await cliJson(broker, ['groups', 'describe', 'orders', 'billing'])).lag_messages;
  equal(await lagOf(), 5, 'billing lag before reset');
  await page.click(`${billing} ${byTestId('group-reset-latest')}`);
  await modal(page, 'reset-group-latest');
  await shot(page, 'confirm-reset');
  await page.click(`dialog[open] ${byTestId('cancel')}`);
  await modalClosed(page);
  equal(await lagOf(), 5, 'reset group: cancel kept the position');
  await page.click(`${billing} ${byTestId('group-reset-latest')}`);
  await modal(page, 'reset-group-latest');
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /billing/);
  equal(await lagOf(), 0, 'reset group to latest: lag');
  await expectValue(page, `${billing} ${byTestId('group-lag')}`, 0, 'page lag after reset to latest');
  await page.click(`${billing} ${byTestId('group-reset-earliest')}`);
  await modal(page, 'reset-group-earliest');
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /billing/);
  equal(await lagOf(), 5, 'reset group to earliest: lag');
  await expectValue(page, `${billing} ${byTestId('group-lag')}`, 5, 'page lag after reset to earliest');
  clean(w, 'reset group');
  log('action: reset group (cancel, latest, earliest) verified with the CLI');

  // Delete a group.
  const groupNames = async () => (await cliJson(broker, ['groups', 'list', 'orders'])).groups.map((g) => g.name).sort();
  const audit = '[data-testid="group-row"][data-name="audit"]';
  await page.click(`${audit} ${byTestId('group-delete')}`);
  await modal(page, 'delete-group');
  await page.click(`dialog[open] ${byTestId('cancel')}`);
  await modalClosed(page);
  equal(await groupNames(), ['audit', 'billing'], 'delete group: cancel kept it');
  await page.click(`${audit} ${byTestId('group-delete')}`);
  await modal(page, 'delete-group');
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /audit/);
  equal(await groupNames(), ['billing'], 'delete group: confirm deleted it');
  await page.waitForSelector(audit, { state: 'detached', timeout: 5000 });
  clean(w, 'delete group');
  log('action: delete group (cancel, then confirm) verified with the CLI');

  // Delete a topic: the name must be typed.
  await openRoute(page, '#/topics/scratch', '[data-testid="topic-page"][data-topic="scratch"][data-loaded="true"]');
  await page.click(byTestId('delete-topic'));
  await modal(page, 'delete-topic');
  check(await page.isDisabled(`dialog[open] ${byTestId('confirm')}`), 'delete topic: confirm is enabled before the name is typed');
  await page.fill(`dialog[open] ${byTestId('confirm-input')}`, 'scratc');
  check(await page.isDisabled(`dialog[open] ${byTestId('confirm')}`), 'delete topic: confirm is enabled for a wrong name');
  await shot(page, 'confirm-delete');
  await page.click(`dialog[open] ${byTestId('cancel')}`);
  await modalClosed(page);
  check(await topicExists(broker, 'scratch'), 'delete topic: cancel deleted the topic');
  await page.click(byTestId('delete-topic'));
  await modal(page, 'delete-topic');
  await page.fill(`dialog[open] ${byTestId('confirm-input')}`, 'scratch');
  check(await page.isEnabled(`dialog[open] ${byTestId('confirm')}`), 'delete topic: confirm stays disabled for the right name');
  await page.click(`dialog[open] ${byTestId('confirm')}`);
  await statusIs(page, 'success', /scratch/);
  await page.waitForSelector('[data-testid="topics"][data-loaded="true"]');
  check(!(await topicExists(broker, 'scratch')), 'delete topic: confirm did not delete the topic');
  check(!(await page.$('[data-testid="topic-row"][data-name="scratch"]')), 'the topics table still lists the deleted topic');
  clean(w, 'delete topic');
  log('action: delete topic (cancel, wrong name, then confirm) verified with the CLI');
}

async function createManyTopics(broker, count) {
  const have = (await httpApi(broker, 'GET', '/topics?limit=1')).data.total;
  const names = [];
  for (let i = 0; names.length < count - have; i += 1) names.push(`bulk-${String(i).padStart(5, '0')}`);
  const t0 = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next];
      next += 1;
      const r = await httpApi(broker, 'POST', '/topics', { name });
      if (r.status !== 201) throw new Error(`POST /api/v1/topics ${name}: ${r.status} ${r.text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const total = (await httpApi(broker, 'GET', '/topics?limit=1')).data.total;
  equal(total, count, 'topics after the bulk creation');
  log(`created ${names.length} topics over HTTP in ${((Date.now() - t0) / 1000).toFixed(1)} s (32 at a time)`);
}

async function timed(page, what, act, expectedNames) {
  const t0 = Date.now();
  await act();
  try {
    await waitRows(page, expectedNames, 10000);
  } catch {
    const shown = await rowNames(page);
    throw new CheckFailed(`${what}: the table never showed the expected rows (first expected ${expectedNames[0]}, shows ${shown.slice(0, 3).join(', ')}...)`);
  }
  const ms = Date.now() - t0;
  log(`  ${what}: ${ms} ms`);
  check(ms < opts.pageLimitMs, `${what} took ${ms} ms (limit ${opts.pageLimitMs} ms)`);
  return ms;
}

async function bigTableChecks(page, w, broker) {
  await createManyTopics(broker, opts.topics);
  const q = async (params) => (await httpApi(broker, 'GET', `/topics?${new URLSearchParams({ limit: '50', ...params })}`)).data;
  await goto(page, broker, '#/topics', '[data-testid="topics"][data-loaded="true"]');
  const first = await q({ sort: 'name', order: 'asc' });
  await waitRows(page, first.topics.map((t) => t.name));
  equal(await page.textContent(byTestId('page-info')), `1\u201350 of ${opts.topics.toLocaleString('en-US')}`, 'page info with many topics');

  // Ten names hold this text (bulk-NNNN0 to bulk-NNNN9); the filter ignores case.
  const needle = `BULK-${String(Math.floor(opts.topics / 20)).padStart(4, '0')}`;
  const filtered = await q({ filter: needle, sort: 'name', order: 'asc' });
  check(filtered.matched === 10, `filter ${needle} should match 10 topics, matched ${filtered.matched}`);
  await timed(page, `filter "${needle}"`, () => page.fill(byTestId('filter'), needle), filtered.topics.map((t) => t.name));
  equal(await page.textContent(byTestId('page-info')), '1\u201310 of 10', 'page info of the filtered table');

  await page.fill(byTestId('filter'), '');
  await waitRows(page, first.topics.map((t) => t.name), 5000);

  const byNameDesc = await q({ sort: 'name', order: 'desc' });
  await timed(page, 'sort by name, descending', () => page.click(byTestId('sort-name')), byNameDesc.topics.map((t) => t.name));
  const page2 = await q({ sort: 'name', order: 'desc', offset: '50' });
  await timed(page, 'next page', () => page.click(byTestId('next-page')), page2.topics.map((t) => t.name));
  equal(await page.textContent(byTestId('page-info')), `51\u2013100 of ${opts.topics.toLocaleString('en-US')}`, 'page info of page 2');
  const byMessages = await q({ sort: 'messages', order: 'desc' });
  await timed(page, 'sort by messages, descending', () => page.click(byTestId('sort-messages')), byMessages.topics.map((t) => t.name));
  equal(byMessages.topics[0].name, 'orders', 'the topic with the most messages first');
  const page2m = await q({ sort: 'messages', order: 'desc', offset: '50' });
  await timed(page, 'next page (by messages)', () => page.click(byTestId('next-page')), page2m.topics.map((t) => t.name));
  await shot(page, 'topics-many');
  clean(w, 'topics table with many topics');

  await openRoute(page, '#/', '[data-testid="overview"][data-loaded="true"]');
  const stats = await cliJson(broker, ['stats']);
  await expectValue(page, byTestId('stat-topics'), stats.topics, 'overview topics after the bulk creation');
  clean(w, 'overview with many topics');
}

// ---------------------------------------------------------------------------------------------
// Phase 2: a broker with authentication

async function authChecks(browser, broker) {
  await runCli(broker, ['topics', 'create', 'secure-orders'], { json: false });
  await runCli(broker, ['publish', 'secure-orders', '{"secret":false}'], { json: false });
  await runCli(broker, ['groups', 'create', 'secure-orders', 'billing']);
  await runCli(broker, ['auth', 'principals', 'create', 'reader', '--allow', 'consume:>']);
  const made = await cliJson(broker, ['auth', 'tokens', 'create', 'reader']);
  const readerToken = made.secret;
  check(typeof readerToken === 'string' && readerToken.length >= 32, `auth tokens create --json gave no secret: ${JSON.stringify(made)}`);

  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const w = watch(page, 'auth');
  await goto(page, broker, '', byTestId('login-form'));
  check(!(await page.isVisible(byTestId('principal'))), 'the principal is shown before login');
  check(!(await page.isVisible(byTestId('nav'))), 'the navigation is shown before login');
  await shot(page, 'login');
  clean(w, 'login form');

  // A wrong token: whoami answers authenticated=false and the form says so.
  await page.fill(byTestId('login-token'), 'sluice_' + 'f'.repeat(48));
  await page.click(byTestId('login-submit'));
  await page.waitForSelector(`${byTestId('login-error')}:not([hidden])`, { timeout: 10000 });
  const refused = await page.textContent(byTestId('login-error'));
  check(refused.trim().length > 0, 'the login form shows no error for a wrong token');
  check(await page.isVisible(byTestId('login-form')), 'the login form went away after a wrong token');
  equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), null, 'a refused token is not kept');
  await shot(page, 'login-refused');
  clean(w, 'login with a wrong token');
  log(`auth: a wrong token is refused (${refused.trim()})`);

  // The admin token.
  await page.fill(byTestId('login-token'), broker.adminToken);
  await page.click(byTestId('login-submit'));
  await page.waitForSelector('[data-testid="overview"][data-loaded="true"]');
  equal(await page.textContent(byTestId('principal')), 'admin', 'principal shown for the admin token');
  const stats = await cliJson(broker, ['stats']);
  await expectValue(page, byTestId('stat-messages'), stats.messages, 'overview messages (auth) vs sluice stats');
  await openRoute(page, '#/topics', '[data-testid="topics"][data-loaded="true"]');
  check(await page.isVisible(byTestId('create-topic')), 'admin: no "Create topic" button');
  await openRoute(page, '#/topics/secure-orders', '[data-testid="topic-page"][data-loaded="true"]');
  check(await page.isVisible(byTestId('purge-topic')), 'admin: no purge button');
  check(await page.isVisible(byTestId('group-reset-earliest')), 'admin: no group reset button');
  equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), broker.adminToken, 'the token is kept in sessionStorage');
  clean(w, 'admin session');
  log('auth: the admin token signs in; actions shown');

  // Log out, then the read-only principal.
  await page.click(byTestId('logout'));
  await page.waitForSelector(byTestId('login-form'));
  equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), null, 'log out clears the token');
  await page.fill(byTestId('login-token'), readerToken);
  await page.click(byTestId('login-submit'));
  await page.waitForSelector('[data-testid="topic-page"][data-loaded="true"]');
  equal(await page.textContent(byTestId('principal')), 'reader', 'principal shown for the reader token');
  check(await page.isVisible(byTestId('readonly-badge')), 'reader: no read-only badge');
  await page.waitForSelector('[data-testid="group-row"][data-name="billing"]');
  for (const id of ['purge-topic', 'delete-topic', 'group-reset-earliest', 'group-reset-latest', 'group-delete']) {
    check(!(await page.$(byTestId(id))), `reader: the ${id} button is shown`);
  }
  await page.waitForSelector('[data-testid="message"]');
  equal(await page.textContent(byTestId('message-payload')), '{"secret":false}', 'reader: browses messages');
  await shot(page, 'readonly-topic');
  await openRoute(page, '#/topics', '[data-testid="topics"][data-loaded="true"]');
  check(!(await page.$(byTestId('create-topic'))), 'reader: the create-topic button is shown');
  equal(await rowNames(page), ['secure-orders'], 'reader: topics table');
  await openRoute(page, '#/', '[data-testid="overview"][data-loaded="true"]');
  await expectValue(page, byTestId('stat-messages'), stats.messages, 'reader: overview messages');
  clean(w, 'read-only session');
  log('auth: a consume-only principal sees no action buttons');

  // A reload keeps the session (sessionStorage); a revoked... token no longer valid returns to login.
  await page.reload();
  await page.waitForSelector('[data-testid="overview"][data-loaded="true"]');
  equal(await page.textContent(byTestId('principal')), 'reader', 'reload keeps the session');
  clean(w, 'reload');

  // A credential revoked mid-session: the next refresh is answered 401 and the console goes
  // back to the login form with the broker's message (those 401 answers are expected here).
  await runCli(broker, ['auth', 'revoke', String(made.id), '--yes']);
  await page.waitForSelector(`${byTestId('login-form')} ${byTestId('login-error')}:not([hidden])`, { timeout: 10000 });
  const why = await page.textContent(byTestId('login-error'));
  check(/unauthenticated/.test(why), `after the token was revoked the login form says ${JSON.stringify(why)}`);
  equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), null, 'a revoked token is forgotten');
  const unexpected = w.problems.splice(0).filter((p) => !/\b401\b/.test(p));
  check(unexpected.length === 0, `revoked session: unexpected problems:\n  ${unexpected.join('\n  ')}`);
  log(`auth: a revoked token returns to the login form (${why.trim()})`);
  await context.close();
}

// ---------------------------------------------------------------------------------------------

async function main() {
  await mkdir(opts.out, { recursive: true });
  for (const [flag, file] of [['--sluiced', opts.sluiced], ['--sluice', opts.sluice], ['--chromium', opts.chromium]]) {
    await access(file, fsConstants.X_OK).catch(() => usage(`${flag} ${file} is not an executable file`));
  }
  const brokers = [];
  let browser = null;
  try {
    const plain = await startBroker('plain');
    brokers.push(plain);
    await checkApiAnswers(plain);
    const { fromTimeMs } = await fillBroker(plain);
    browser = await chromium.launch({ executablePath: opts.chromium, args: LAUNCH_ARGS });
    log(`chromium ${browser.version()}`);
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    const w = watch(page, 'plain');
    await overviewChecks(page, w, plain);
    await topicsTableChecks(page, w, plain);
    await topicPageChecks(page, w, plain, fromTimeMs);
    await actionChecks(page, w, plain);
    await bigTableChecks(page, w, plain);
    await context.close();
    await plain.stop();

    const adminToken = `sluice-test-${randomBytes(24).toString('hex')}`;
    const secure = await startBroker('auth', { auth: true, adminToken });
    brokers.push(secure);
    await authChecks(browser, secure);
    await secure.stop();
    log(`PASS: ${checks} checks; screenshots in ${opts.out}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const b of brokers) await b.stop().catch(() => {});
  }
}

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(1);
  });
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`FAIL after ${checks} checks: ${err instanceof CheckFailed ? err.message : err.stack || err}\n`);
  process.exit(1);
});
