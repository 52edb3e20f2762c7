// End-to-end test of the management page in headless Chromium, against a real
// broker and the real `warren` CLI. Started by tools/tests/web_ui.rs, which
// passes:
//   WARREN_UI_URL    the page, e.g. http://127.0.0.1:41234/
//   WARREN_BROKER    the broker's native address (the CLI reads it too)
//   WARREN_BIN       the `warren` binary
//   WARREN_UI_SCREENSHOT=1  also write docs/management-page.png (the README's)
// The last steps add users with the CLI and log in through the page's form.
// Exits 0 when every step passed, 1 with the failing step otherwise. Every
// wait is bounded; the whole run is capped by RUN_DEADLINE_MS.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const RUN_DEADLINE_MS = 240_000;
const WAIT_MS = 20_000; // one expectation: the page refreshes every 3 s
const COMMAND_MS = 60_000; // one CLI command
const SCREENSHOT_MAX_BYTES = 300 * 1024;

const url = need('WARREN_UI_URL');
const brokerAddr = need('WARREN_BROKER');
const warrenBin = need('WARREN_BIN');
const screenshot = process.env.WARREN_UI_SCREENSHOT === '1';
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const TOPIC = 'ui-orders';
const GROUP = 'ui-billing';
// Records produced to each partition of TOPIC, by partition.
const PER_PARTITION = [5, 3, 4];
// How many the group consumer prints (and commits) before it stops.
const CONSUMED = 6;
// The login steps at the end: a topic, a superuser and a user without ACLs.
const SECURED_TOPIC = 'ui-secured';
const ADMIN = 'ui-admin';
const ADMIN_PASSWORD = 'ui-admin-pw';
const PLAIN_USER = 'ui-viewer';
const PLAIN_PASSWORD = 'ui-viewer-pw';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`management.mjs: set ${name}`);
    process.exit(2);
  }
  return v;
}

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

const watchdog = setTimeout(() => {
  console.error(`FAIL: the run took longer than ${RUN_DEADLINE_MS / 1000} s`);
  process.exit(1);
}, RUN_DEADLINE_MS);
watchdog.unref();

// The CLI gets this script's environment without its own variables.
const cliEnv = Object.fromEntries(Object.entries(process.env)
  .filter(([k]) => !['WARREN_UI_URL', 'WARREN_BIN', 'WARREN_UI_SCREENSHOT'].includes(k)));

/** Runs `warren ARGS` with `input` on stdin; resolves {stdout, stderr}, rejects on failure. */
function warren(args, input = '', env = cliEnv) {
  return new Promise((resolve, reject) => {
    const child = spawn(warrenBin, [...args, '--broker', brokerAddr], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warren ${args.join(' ')}: no exit within ${COMMAND_MS / 1000} s\n${stderr}`));
    }, COMMAND_MS);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`warren ${args.join(' ')} exited ${code}:\n${stderr}`));
    });
    child.stdin.end(input);
  });
}

/** Retries `check` (sync or async) until it returns a truthy value; throws with `what` after `ms`. */
async function eventually(what, check, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last = null;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: still not true after ${ms / 1000} s (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const byTestId = (id) => `[data-testid="${id}"]`;

/** Fills and submits the login form. */
async function logIn(page, user, password) {
  await page.fill(byTestId('login-user'), user);
  await page.fill(byTestId('login-password'), password);
  await page.click(byTestId('login-submit'));
}

/** Whether the page holds a bearer token (app.js keeps it in sessionStorage). */
const tokenStored = (page) => page.evaluate(() => sessionStorage.getItem('warren.token') !== null);

async function text(page, selector) {
  const el = await page.$(selector);
  return el ? (await el.textContent()).trim() : null;
}

/** Waits for the cell `col` of row `rowTestId` to read `want`. */
async function expectCell(page, rowTestId, col, want) {
  await eventually(`${rowTestId} ${col} = ${want}`, async () => {
    const got = await text(page, `${byTestId(rowTestId)} [data-col="${col}"]`);
    if (got !== want) throw new Error(`${col} is ${JSON.stringify(got)}`);
    return true;
  });
}

/** Fails when a form control has no <label>, or a button no accessible text. */
async function expectLabelled(page) {
  const bad = await page.$$eval('input, select, textarea, button', (els) => els
    .filter((el) => (el.tagName === 'BUTTON'
      ? !(el.textContent.trim() || el.getAttribute('aria-label'))
      : el.labels.length === 0))
    .map((el) => el.outerHTML.slice(0, 80)));
  if (bad.length > 0) throw new Error(`unlabelled controls: ${bad.join(', ')}`);
}

async function go(page, nav, ready) {
  await page.click(byTestId('nav-' + nav));
  await page.waitForSelector(ready, { timeout: WAIT_MS });
}

const steps = [];
let currentPage = null;
async function step(name, fn) {
  log(`- ${name}`);
  try {
    await fn();
  } catch (e) {
    // What the page showed, to tell a page bug from an API answer.
    if (currentPage) {
      const banner = await currentPage.$eval(byTestId('error-banner'),
        (b) => (b.hidden ? '(no error banner)' : 'error banner: ' + b.textContent.trim())).catch(() => '?');
      log(`  failed at ${currentPage.url()}; ${banner}`);
    }
    throw e;
  }
  steps.push(name);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pageErrors = [];
  const deletes = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.setDefaultTimeout(WAIT_MS);
    currentPage = page;
    page.on('pageerror', (e) => { pageErrors.push(e.message); log(`page error: ${e.message}`); });
    page.on('console', (m) => { if (m.type() === 'error') log(`console: ${m.text()}`); });
    page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(r.url()); });

    await step('the overview opens with the broker\'s counters', async () => {
      await page.goto(url);
      await eventually('overview topics = 0', async () => (await text(page, byTestId('overview-topics'))) === '0');
      await page.waitForSelector(byTestId('chart-bytes'));
      await page.waitForSelector(byTestId('chart-records'));
      if (await page.isVisible(byTestId('login'))) throw new Error('the login form shows on a broker without users');
    });

    await step('a topic is created through the form', async () => {
      await go(page, 'topics', byTestId('topics-table'));
      await expectLabelled(page);
      await page.fill(byTestId('create-topic-name'), TOPIC);
      await page.fill(byTestId('create-topic-partitions'), String(PER_PARTITION.length));
      await page.selectOption(byTestId('create-topic-routing'), 'hash');
      await page.click(byTestId('create-topic-submit'));
      await expectCell(page, 'topic-row-' + TOPIC, 'partitions', String(PER_PARTITION.length));
      await expectCell(page, 'topic-row-' + TOPIC, 'records', '0');
      if ((await page.inputValue(byTestId('create-topic-name'))) !== '') throw new Error('the form was not cleared');
    });

    await step('creating it again shows the API\'s error in the banner and pauses the refresh', async () => {
      await page.fill(byTestId('create-topic-name'), TOPIC);
      await page.click(byTestId('create-topic-submit'));
      await page.waitForSelector(byTestId('error-banner'), { state: 'visible' });
      const code = await text(page, byTestId('error-code'));
      const message = await text(page, `${byTestId('error-text')} strong`);
      log(`  banner: ${message} (${code})`);
      if (code !== 'TOPIC_ALREADY_EXISTS') throw new Error(`error code ${code}`);
      if (!message) throw new Error('the banner has no message');
      // The form still holds the rejected name: the page must not refresh under it.
      await eventually('refresh paused', async () =>
        (await page.getAttribute(byTestId('refresh-state'), 'data-state')) === 'paused');
      await page.click(byTestId('error-dismiss'));
      await page.waitForSelector(byTestId('error-banner'), { state: 'hidden' });
      await page.click('#create-topic-form button[type=reset]');
      await eventually('refresh live again', async () =>
        (await page.getAttribute(byTestId('refresh-state'), 'data-state')) === 'live');
    });

    await step('records produced with the CLI show up in the topic list by themselves', async () => {
      for (const [p, n] of PER_PARTITION.entries()) {
        const lines = Array.from({ length: n }, (_, i) => `p${p}-m${i}\n`).join('');
        await warren(['produce', TOPIC, '--partition', String(p), '--key', `k${p}`], lines);
      }
      const total = PER_PARTITION.reduce((a, b) => a + b, 0);
      // No navigation: the 3 s refresh brings the new count.
      await expectCell(page, 'topic-row-' + TOPIC, 'records', String(total));
    });

    await step('the topic detail shows offsets per partition', async () => {
      await page.click(`${byTestId('topic-row-' + TOPIC)} [data-col="name"] a`);
      await page.waitForSelector(byTestId('partitions-table'));
      for (const [p, n] of PER_PARTITION.entries()) {
        await expectCell(page, 'partition-row-' + p, 'start', '0');
        await expectCell(page, 'partition-row-' + p, 'end', String(n));
        await expectCell(page, 'partition-row-' + p, 'hw', String(n));
      }
      if ((await text(page, byTestId('topic-routing'))) !== 'hash') throw new Error('routing is not hash');
    });

    await step('the message browser pages through partition 0', async () => {
      await go(page, 'messages', byTestId('messages-form'));
      await eventually('topic option', async () => (await page.$(`${byTestId('messages-topic')} option[value="${TOPIC}"]`)) !== null);
      await expectLabelled(page);
      await page.selectOption(byTestId('messages-topic'), TOPIC);
      await page.fill(byTestId('messages-partition'), '0');
      await page.fill(byTestId('messages-offset'), '0');
      await page.fill(byTestId('messages-limit'), '2');
      await page.click(byTestId('messages-show'));
      const pages = [[0, 1], [2, 3], [4]];
      for (const [i, offsets] of pages.entries()) {
        if (i > 0) await page.click(byTestId('messages-next'));
        await eventually(`page ${i} shows offsets ${offsets}`, async () => {
          const rows = await page.$$eval(`${byTestId('messages-table')} tbody tr[data-testid^="message-row-"]`,
            (trs) => trs.map((tr) => tr.getAttribute('data-testid')));
          return JSON.stringify(rows) === JSON.stringify(offsets.map((o) => 'message-row-' + o));
        });
        for (const o of offsets) {
          await expectCell(page, 'message-row-' + o, 'value', `p0-m${o}`);
          await expectCell(page, 'message-row-' + o, 'key', 'k0');
          const ts = await text(page, `${byTestId('message-row-' + o)} [data-col="timestamp"]`);
          if (!ts.startsWith(String(new Date().getUTCFullYear()))) throw new Error(`timestamp ${ts}`);
        }
      }
      // Past the end: an empty page, and nothing further to page to.
      await page.click(byTestId('messages-next'));
      await page.waitForSelector(`${byTestId('messages-table')} tr.empty`);
      await eventually('next disabled at the end', () => page.isDisabled(byTestId('messages-next')));
      // The address keeps the page, so it can be shared and reloaded.
      if (!page.url().includes(`topic=${TOPIC}&partition=0&offset=5`)) throw new Error(`url ${page.url()}`);
    });

    let expected; // partition -> { committed, lag }
    await step('a CLI group consumer commits part of the topic', async () => {
      const { stdout } = await warren(['consume', TOPIC, '--group', GROUP, '--from-beginning',
        '--max-messages', String(CONSUMED), '--format', 'json', '--timeout-ms', '20000']);
      const printed = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      if (printed.length !== CONSUMED) throw new Error(`the consumer printed ${printed.length} records`);
      const next = new Map();
      for (const r of printed) next.set(r.partition, Math.max(next.get(r.partition) || 0, r.offset + 1));
      expected = PER_PARTITION.map((n, p) => ({
        committed: next.has(p) ? next.get(p) : null,
        lag: n - (next.get(p) || 0),
      }));
      log(`  committed per partition: ${JSON.stringify(expected)}`);
    });

    await step('the groups view shows the group\'s lag, in total and per partition', async () => {
      const total = PER_PARTITION.reduce((a, b) => a + b, 0) - CONSUMED;
      await go(page, 'groups', byTestId('groups-table'));
      await expectCell(page, 'group-row-consumer-' + GROUP, 'lag', String(total));
      await expectCell(page, 'group-row-consumer-' + GROUP, 'kind', 'consumer');
      await expectCell(page, 'group-row-consumer-' + GROUP, 'members', '0');
      await page.click(`${byTestId('group-row-consumer-' + GROUP)} [data-col="name"] a`);
      await page.waitForSelector(byTestId('group-offsets-table'));
      for (const [p, e] of expected.entries()) {
        const row = `group-offset-${TOPIC}-${p}`;
        if (e.committed === null) {
          // No commit on this partition: the API may list it (lag = the
          // whole log) or leave it out.
          if (await page.$(byTestId(row))) await expectCell(page, row, 'lag', String(e.lag));
          continue;
        }
        await expectCell(page, row, 'committed', String(e.committed));
        await expectCell(page, row, 'end', String(PER_PARTITION[p]));
        await expectCell(page, row, 'lag', String(e.lag));
      }
      await eventually('group total lag', async () => (await text(page, byTestId('group-lag'))) === String(total));
    });

    await step('an open CLI connection is listed in the connections view', async () => {
      const child = spawn(warrenBin, ['consume', TOPIC, '--timeout-ms', '60000', '--broker', brokerAddr],
        { stdio: ['ignore', 'ignore', 'ignore'], env: cliEnv });
      try {
        await go(page, 'connections', byTestId('connections-table'));
        await eventually('a connection row', async () => {
          const peers = await page.$$eval(`${byTestId('connections-table')} [data-col="peer"]`,
            (tds) => tds.map((td) => td.textContent));
          return peers.some((p) => p.startsWith('127.0.0.1:'));
        });
      } finally {
        child.kill('SIGTERM');
      }
    });

    // For the screenshot: about a minute of varying traffic, still flowing
    // when the picture is taken, so the chart has a shape.
    let traffic = null;
    if (screenshot) {
      traffic = (async () => {
        for (let round = 0; round < 14; round += 1) {
          const n = 800 * (1 + (round % 5));
          const lines = Array.from({ length: n }, (_, i) => `demo-${round}-${i} ${'x'.repeat(120)}\n`).join('');
          await warren(['produce', TOPIC], lines);
          await warren(['consume', TOPIC, '--from-beginning', '--max-messages', String(n * 2), '--timeout-ms', '3000']);
          await new Promise((r) => setTimeout(r, 3500));
        }
      })();
      await step('traffic for the screenshot\'s chart', () => new Promise((r) => setTimeout(r, 55_000)));
    }

    await step('the overview counts the topic, its partitions and disk use', async () => {
      await go(page, 'overview', byTestId('overview-cards'));
      await eventually('overview topics = 1', async () => (await text(page, byTestId('overview-topics'))) === '1');
      await eventually('overview partitions = 3', async () => (await text(page, byTestId('overview-partitions'))) === '3');
      await eventually('overview groups >= 1', async () => Number(await text(page, byTestId('overview-groups'))) >= 1);
      await eventually('disk use > 0', async () => {
        const disk = await text(page, byTestId('overview-disk'));
        return disk !== '0 B' && disk !== null;
      });
      // The broker samples every 5 s from its start; by now there are samples.
      await eventually('chart samples', async () =>
        Number(await page.getAttribute(byTestId('chart-bytes'), 'data-samples')) >= 2, 30_000);
      await page.waitForSelector(`${byTestId('chart-records')} path[data-series="records_in_per_sec"]`, { state: 'attached' });
      if (screenshot) {
        const path = join(repoRoot, 'docs', 'management-page.png');
        await page.waitForTimeout(3500); // one more refresh, so the last sample is drawn
        // Down to the charts: the README needs no empty page below them.
        const main = await page.$eval('main', (m) => m.getBoundingClientRect().bottom);
        await page.screenshot({ path, clip: { x: 0, y: 0, width: 1280, height: Math.min(860, Math.ceil(main)) } });
        const size = statSync(path).size;
        log(`  wrote ${path} (${size} bytes)`);
        if (size > SCREENSHOT_MAX_BYTES) throw new Error(`the screenshot is ${size} bytes, over ${SCREENSHOT_MAX_BYTES}`);
      }
      if (traffic) await traffic;
    });

    await step('a topic is deleted through the page, only after the confirmation', async () => {
      await go(page, 'topics', byTestId('topics-table'));
      await page.waitForSelector(byTestId('delete-topic-' + TOPIC));
      page.once('dialog', (d) => d.dismiss());
      await page.click(byTestId('delete-topic-' + TOPIC));
      await page.waitForTimeout(500);
      if (deletes.length !== 0) throw new Error(`a dismissed confirmation still sent ${deletes}`);
      page.once('dialog', (d) => d.accept());
      await page.click(byTestId('delete-topic-' + TOPIC));
      await eventually('topic row gone', async () => (await page.$(byTestId('topic-row-' + TOPIC))) === null);
      const res = await fetch(new URL('/api/topics', url));
      const topics = await res.json();
      if (topics.some((t) => t.name === TOPIC)) throw new Error('the API still lists the topic');
      if (deletes.length !== 1) throw new Error(`DELETE requests: ${deletes}`);
    });

    if (await page.isVisible(byTestId('login'))) throw new Error('the login form showed up');

    // From here on the broker has users: the login form against the real
    // broker (token route, 401, filtered listings, 403).
    await step('with a superuser made by the CLI, a reload shows the login form', async () => {
      await warren(['topic', 'create', SECURED_TOPIC, '--partitions', '2']);
      await warren(['user', 'add', ADMIN, '--superuser', '--password-stdin'], ADMIN_PASSWORD + '\n');
      await page.goto(new URL('#/topics', url).href);
      await page.reload();
      await page.waitForSelector(byTestId('login'), { state: 'visible' });
      if (await page.isVisible(byTestId('view'))) throw new Error('the view shows beside the login form');
      if (await page.isVisible(byTestId('logout'))) throw new Error('"Log out" shows before any login');
      await expectLabelled(page);
    });

    await step('a wrong password shows the error banner and keeps the form', async () => {
      await logIn(page, ADMIN, 'not-' + ADMIN_PASSWORD);
      await page.waitForSelector(byTestId('error-banner'), { state: 'visible' });
      const code = await text(page, byTestId('error-code'));
      log(`  banner: ${await text(page, `${byTestId('error-text')} strong`)} (${code})`);
      if (code !== 'UNAUTHORIZED') throw new Error(`error code ${code}`);
      if (!(await page.isVisible(byTestId('login')))) throw new Error('the login form went away');
      if (await tokenStored(page)) throw new Error('a token was stored');
    });

    await step('the right password shows the topics view with the topics', async () => {
      await logIn(page, ADMIN, ADMIN_PASSWORD);
      await page.waitForSelector(byTestId('login'), { state: 'hidden' });
      await page.waitForSelector(byTestId('error-banner'), { state: 'hidden' });
      await expectCell(page, 'topic-row-' + SECURED_TOPIC, 'partitions', '2');
      await page.waitForSelector(byTestId('logout'), { state: 'visible' });
      if (!(await tokenStored(page))) throw new Error('no token in sessionStorage');
      if ((await page.inputValue(byTestId('login-password'))) !== '') throw new Error('the password stayed in the form');
    });

    await step('"Log out" brings the login form back', async () => {
      await page.click(byTestId('logout'));
      await page.waitForSelector(byTestId('login'), { state: 'visible' });
      if (await tokenStored(page)) throw new Error('the token is still stored');
      if (await page.isVisible(byTestId('logout'))) throw new Error('"Log out" still shows');
    });

    await step('a user without ACLs sees no topics, and FORBIDDEN on connections', async () => {
      await warren(['user', 'add', PLAIN_USER, '--password-stdin'], PLAIN_PASSWORD + '\n',
        { ...cliEnv, WARREN_USER: ADMIN, WARREN_PASSWORD: ADMIN_PASSWORD });
      await logIn(page, PLAIN_USER, PLAIN_PASSWORD);
      await page.waitForSelector(byTestId('login'), { state: 'hidden' });
      // The listing is filtered: the broker has the topic, this user sees none.
      await page.waitForSelector(`${byTestId('topics-table')} tr.empty`);
      if (await page.$(byTestId('topic-row-' + SECURED_TOPIC))) throw new Error('the topic is listed');
      if (await page.isVisible(byTestId('error-banner'))) throw new Error('an error banner on the topics view');
      await go(page, 'connections', byTestId('error-banner'));
      await page.waitForSelector(byTestId('error-banner'), { state: 'visible' });
      const code = await text(page, byTestId('error-code'));
      log(`  banner: ${await text(page, `${byTestId('error-text')} strong`)} (${code})`);
      if (code !== 'FORBIDDEN') throw new Error(`error code ${code}`);
      if (await page.$(byTestId('connections-table'))) throw new Error('connections were listed');
      if (await page.isVisible(byTestId('login'))) throw new Error('a 403 brought the login form');
      await page.click(byTestId('logout'));
      await page.waitForSelector(byTestId('login'), { state: 'visible' });
    });
    if (pageErrors.length > 0) throw new Error(`uncaught errors in the page: ${pageErrors.join('; ')}`);
  } finally {
    await browser.close();
  }
}

try {
  await main();
  log(`all ${steps.length} steps passed`);
  process.exit(0);
} catch (e) {
  console.error(`FAIL after ${steps.length} passed steps: ${e.stack || e}`);
  process.exit(1);
}
