// Warren's management page: a small hash-routed app over the admin JSON API
// on the same origin. No framework and no build step: the broker serves this
// file as it is (broker/src/http/ui.rs), and it must work offline.
//
// Views (location.hash):
//   #/overview            counters and the throughput chart (/api/overview)
//   #/topics              topic list, create form, delete buttons
//   #/topics/NAME         partitions (offsets, size), bindings, configs
//   #/groups              consumer and share groups with their total lag
//   #/groups/NAME         members, lag and owner per partition
//   #/messages?topic=T&partition=P&offset=O&limit=N   one page of a partition
//   #/connections         open native-protocol connections
//
// Every view has mount() (builds the static parts: headings, forms, empty
// tables) and refresh() (fetches and fills the data parts). A timer calls
// refresh() every REFRESH_MS, skipped while the user is editing a form so
// nothing moves under the cursor. The DOM is built with textContent only:
// record keys and values are untrusted bytes and must never become markup.
//
// Authentication: with users defined on the broker, API calls answer 401; the
// page then shows a login form, trades the user name and password (Basic auth)
// for a token at POST /api/auth/token, keeps it in sessionStorage (gone when
// the tab closes) and sends it as `Authorization: Bearer`.
'use strict';

(() => {
  const REFRESH_MS = 3000;
  const TOKEN_KEY = 'warren.token';
  const NOTICE_MS = 4000;
  // The broker samples throughput every 5 s; a longer hole means it was not
  // running or not sampling, so the chart breaks the line there.
  const SAMPLE_GAP_MS = 12000;
  const CHART_WINDOW_MS = 10 * 60 * 1000;
  const CHART_MIN_SPAN_MS = 60 * 1000;
  // A call that takes longer is abandoned with an error, so a hung broker
  // cannot stop the refresh for good.
  const API_TIMEOUT_MS = 15000;

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- API

  /** An error answer of the admin API: HTTP status, stable code, message. */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** A 401: the login form is showing; the caller just stops. */
  class LoginRequired extends Error {}

  /** Path segment of a topic or group name. */
  const seg = (name) => encodeURIComponent(name);

  /**
   * Calls the admin API and returns the decoded JSON (null for 204).
   * Throws ApiError with the API's own `message`, or LoginRequired.
   */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = { method, headers, cache: 'no-store', signal: AbortSignal.timeout(API_TIMEOUT_MS) };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e.name === 'TimeoutError') {
        throw new ApiError(0, 'TIMEOUT', `${method} ${path}: no answer from the broker in ${API_TIMEOUT_MS / 1000} s`);
      }
      throw new ApiError(0, 'UNREACHABLE', 'Cannot reach the broker: ' + e.message);
    }
    if (res.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      showLogin();
      throw new LoginRequired('login required');
    }
    return decode(res, method + ' ' + path);
  }

  async function decode(res, what) {
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const code = data && typeof data.error === 'string' ? data.error : 'HTTP_' + res.status;
      const message = data && typeof data.message === 'string'
        ? data.message
        : `${what} failed: HTTP ${res.status} ${text.slice(0, 200)}`;
      throw new ApiError(res.status, code, message);
    }
    if (text && data === null) {
      throw new ApiError(res.status, 'INVALID_RESPONSE', `${what} did not answer JSON`);
    }
    return data;
  }

  // ---------------------------------------------------------------- DOM helpers

  function fill(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  /** An HTML element: h('td', {class: 'num'}, 'text', childNode). */
  const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  const SVG_NS = 'http://www.w3.org/2000/svg';
  /** An SVG element. */
  const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

  /** A link to a route. */
  const link = (hash, text, attrs) => h('a', { href: hash, ...attrs }, text);

  /** Shown where a value is null. */
  const none = () => h('span', { class: 'muted', title: 'none' }, '—');

  /**
   * A data table with column headers. columns: [{key, label, numeric}];
   * rows: [{attrs, cells: {key: Node|string}}]. Every cell gets data-col=key
   * so tests and styles can find it.
   */
  function dataTable({ testid, caption, columns, rows, empty }) {
    const head = h('tr', {}, columns.map((c) =>
      h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)));
    const body = rows.length === 0
      ? [h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty || 'Nothing here yet.'))]
      : rows.map((r) => h('tr', r.attrs || {}, columns.map((c) => {
        const v = r.cells[c.key];
        return h('td', { 'data-col': c.key, class: c.numeric ? 'num' : null },
          v === null || v === undefined ? none() : v);
      })));
    return h('table', { 'data-testid': testid },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, head),
      h('tbody', {}, body));
  }

  /** Replaces the children of el (a slot that refresh() fills). */
  const put = (el, ...children) => el.replaceChildren(...children.flat().filter((c) => c != null));

  const shownData = new WeakMap();
  /**
   * Rebuilds slot from build() only when `data` differs from what the slot
   * shows: an unchanged table keeps its nodes, so a click, a text selection
   * or keyboard focus in it survives the refresh.
   */
  function update(slot, data, build) {
    const key = JSON.stringify(data);
    if (shownData.get(slot) === key) return;
    shownData.set(slot, key);
    put(slot, build());
  }

  /** A definition list of label/value pairs, each value with a test id. */
  function facts(pairs) {
    return h('dl', { class: 'facts' }, pairs.map(([label, value, testid]) => h('div', {},
      h('dt', {}, label),
      h('dd', { 'data-testid': testid || null }, value === null || value === undefined ? none() : value))));
  }

  // ---------------------------------------------------------------- formatting

  const count = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return String(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n;
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    // Number() drops the zeros toFixed pads with: "250 KiB", "1.5 MiB".
    return (i === 0 ? String(Math.round(v)) : String(Number(v.toFixed(v < 10 ? 2 : 1)))) + ' ' + units[i];
  }

  /** A rate with a short unit: 1.5k, 2.3M. */
  function rate(n) {
    if (typeof n !== 'number' || !isFinite(n)) return String(n);
    const abs = Math.abs(n);
    const short = (x) => String(Number(x.toFixed(1)));
    if (abs >= 1e9) return short(n / 1e9) + 'G';
    if (abs >= 1e6) return short(n / 1e6) + 'M';
    if (abs >= 1e3) return short(n / 1e3) + 'k';
    return abs >= 10 || n === 0 ? String(Math.round(n)) : short(n);
  }

  const bytesRate = (n) => bytes(n) + '/s';
  const recordsRate = (n) => rate(n) + ' rec/s';

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  /** ISO-like UTC time with milliseconds: unambiguous across operators. */
  function timestamp(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return String(ms);
    const d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
  }

  const clock = (ms) => {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400);
    const hr = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d} d ${hr} h`;
    if (hr > 0) return `${hr} h ${m} min`;
    if (m > 0) return `${m} min ${s % 60} s`;
    return `${s} s`;
  }

  /** A key, value or header value of the messages API. */
  function payload(p) {
    if (p === null || p === undefined) return h('span', { class: 'muted null' }, 'null');
    // A long value comes cut, with its full length.
    const cut = p.truncated
      ? h('span', { class: 'muted', title: 'only the first bytes are shown' }, ` … (${p.bytes} bytes)`)
      : null;
    if (p.encoding === 'base64') {
      return h('span', { class: 'payload' },
        h('span', { class: 'badge', title: 'not valid UTF-8: shown as base64' }, 'base64'), ' ',
        h('code', {}, p.data), cut);
    }
    return h('span', { class: 'payload' }, String(p.data), cut);
  }

  // ---------------------------------------------------------------- banners

  let errorSource = null;
  let noticeTimer = null;

  /** Shows an error; `source` 'refresh' errors clear on the next good refresh. */
  function showError(err, source) {
    if (err instanceof LoginRequired) return;
    const code = err instanceof ApiError ? err.code : 'ERROR';
    $('error-text').replaceChildren(
      h('strong', {}, err.message || String(err)),
      ' ',
      h('code', { class: 'code', 'data-testid': 'error-code' }, code));
    $('error-banner').dataset.code = code;
    $('error-banner').hidden = false;
    errorSource = source;
  }

  function clearError(source) {
    if (source && errorSource !== source) return;
    $('error-banner').hidden = true;
    errorSource = null;
  }

  function notice(text) {
    const el = $('notice-banner');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.hidden = true; }, NOTICE_MS);
  }

  // ---------------------------------------------------------------- forms

  /**
   * Wires a form: marks it dirty on input (which pauses the refresh), runs
   * `action(form)` on submit with the button disabled, shows its error in
   * the banner, and on success clears the dirty mark (and resets the form
   * when `reset`).
   */
  function onSubmit(form, action, { reset = false } = {}) {
    form.addEventListener('input', () => { form.dataset.dirty = '1'; });
    form.addEventListener('reset', () => { delete form.dataset.dirty; });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const buttons = form.querySelectorAll('button[type=submit]');
      buttons.forEach((b) => { b.disabled = true; });
      clearError();
      try {
        await action(form);
        if (reset) form.reset();
        delete form.dataset.dirty;
        if (form.contains(document.activeElement)) document.activeElement.blur();
      } catch (e) {
        showError(e, 'action');
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
    return form;
  }

  /** A labelled input: [label, control] in a field wrapper. */
  function field(id, label, control, hint) {
    control.id = id;
    return h('div', { class: 'field' },
      h('label', { for: id }, label),
      control,
      hint ? h('small', { class: 'hint' }, hint) : null);
  }

  /** True while the user is in the middle of a form. */
  function editing() {
    const a = document.activeElement;
    if (a && a.matches && a.matches('input, select, textarea') && a.closest('form')) return true;
    return Array.from(document.querySelectorAll('#view form')).some((f) => f.dataset.dirty === '1');
  }

  // ---------------------------------------------------------------- chart

  /** The smallest 1, 2, 2.5 or 5 times a power of ten that is >= v: a decimal grid step. */
  function niceStep(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  /** The smallest power of two >= v: a bytes grid reads 256 KiB, 512 KiB, 768 KiB, 1 MiB. */
  function binaryStep(v) {
    if (!(v > 1)) return 1;
    return Math.pow(2, Math.ceil(Math.log2(v)));
  }

  /**
   * An SVG line chart of samples [{time_ms, ...}] for the given series
   * [{key, label, cls}], y from 0 to a round maximum, x the time span of the
   * samples (the last 10 minutes at most, one minute at least).
   */
  function lineChart({ testid, title, samples, series, format, step = niceStep }) {
    const W = 640;
    const H = 220;
    const M = { left: 76, right: 14, top: 12, bottom: 26 };
    const pw = W - M.left - M.right;
    const ph = H - M.top - M.bottom;
    const good = samples.filter((s) => typeof s.time_ms === 'number');
    const titleId = testid + '-title';
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': titleId,
      'data-testid': testid, 'data-samples': good.length,
    }, svg('title', { id: titleId }, title));
    if (good.length === 0) {
      root.append(svg('text', { x: W / 2, y: H / 2, class: 'chart-empty', 'text-anchor': 'middle' },
        'No samples yet: the broker records one every 5 seconds.'));
      return root;
    }
    const t1 = good[good.length - 1].time_ms;
    const t0 = Math.min(t1 - CHART_MIN_SPAN_MS, Math.max(good[0].time_ms, t1 - CHART_WINDOW_MS));
    const shown = good.filter((s) => s.time_ms >= t0);
    let max = 0;
    for (const s of shown) for (const se of series) max = Math.max(max, Number(s[se.key]) || 0);
    // At most four grid steps of a round size, the top one just above the peak.
    const yStep = step(max / 4);
    const ticks = Math.max(1, Math.ceil(max / yStep));
    const yMax = ticks * yStep;
    const x = (t) => M.left + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => M.top + ph - (Math.max(0, Number(v) || 0) / yMax) * ph;

    const grid = svg('g', { class: 'grid' });
    for (let i = 0; i <= ticks; i += 1) {
      const v = yStep * i;
      const yy = y(v);
      grid.append(
        svg('line', { x1: M.left, x2: W - M.right, y1: yy, y2: yy }),
        svg('text', { x: M.left - 6, y: yy + 4, 'text-anchor': 'end' }, format(v)));
    }
    for (let i = 0; i <= 4; i += 1) {
      const t = t0 + ((t1 - t0) * i) / 4;
      grid.append(svg('text', {
        x: x(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle',
      }, clock(t)));
    }
    root.append(grid);

    for (const se of series) {
      let d = '';
      let prev = null;
      for (const s of shown) {
        const cmd = prev === null || s.time_ms - prev > SAMPLE_GAP_MS ? 'M' : 'L';
        d += `${cmd}${x(s.time_ms).toFixed(1)},${y(s[se.key]).toFixed(1)} `;
        prev = s.time_ms;
      }
      root.append(svg('path', { d: d.trim(), class: 'series ' + se.cls, 'data-series': se.key }));
      if (shown.length === 1) {
        root.append(svg('circle', { cx: x(shown[0].time_ms), cy: y(shown[0][se.key]), r: 3, class: 'dot ' + se.cls }));
      }
    }
    return root;
  }

  /** Legend with each series' latest value. */
  function legend(samples, series, format) {
    const last = samples[samples.length - 1];
    return h('ul', { class: 'legend' }, series.map((se) => h('li', {},
      h('span', { class: 'swatch ' + se.cls, 'aria-hidden': 'true' }),
      se.label + ': ',
      h('strong', { 'data-testid': 'latest-' + se.key }, last ? format(Number(last[se.key]) || 0) : '—'))));
  }

  // ---------------------------------------------------------------- views

  const views = {};

  views.overview = {
    title: 'Overview',
    mount(root) {
      const stats = h('div', { class: 'cards', 'data-testid': 'overview-cards' });
      const bytesChart = h('div', { class: 'chart-slot' });
      const recordsChart = h('div', { class: 'chart-slot' });
      const meta = h('p', { class: 'muted', 'data-testid': 'overview-meta' });
      root.append(
        h('h1', {}, 'Overview'),
        meta,
        stats,
        h('section', { class: 'charts', 'aria-label': 'Throughput' },
          h('figure', { class: 'panel' }, h('figcaption', {}, 'Bytes per second'), bytesChart),
          h('figure', { class: 'panel' }, h('figcaption', {}, 'Records in per second'), recordsChart)));
      const card = (label, value, testid) => h('div', { class: 'card' },
        h('div', { class: 'card-label' }, label),
        h('div', { class: 'card-value', 'data-testid': testid }, value));
      return {
        async refresh() {
          const o = await api('GET', '/api/overview');
          const totals = o.totals || {};
          put(meta, `Warren ${o.version} · up ${duration(o.uptime_seconds)}`);
          put(stats,
            card('Connections', count(o.connections), 'overview-connections'),
            card('Topics', count(o.topics), 'overview-topics'),
            card('Partitions', count(o.partitions), 'overview-partitions'),
            card('Groups', count(o.groups), 'overview-groups'),
            card('Disk use', bytes(o.disk_bytes), 'overview-disk'),
            card('Records in', count(totals.records_in), 'overview-records-in'),
            card('Bytes in', bytes(totals.bytes_in), 'overview-bytes-in'),
            card('Bytes out', bytes(totals.bytes_out), 'overview-bytes-out'),
            card('Requests', count(totals.requests), 'overview-requests'));
          const samples = Array.isArray(o.throughput) ? o.throughput : [];
          const bytesSeries = [
            { key: 'bytes_in_per_sec', label: 'In', cls: 's-in' },
            { key: 'bytes_out_per_sec', label: 'Out', cls: 's-out' },
          ];
          const recordSeries = [{ key: 'records_in_per_sec', label: 'Records in', cls: 's-records' }];
          put(bytesChart,
            lineChart({
              testid: 'chart-bytes', title: 'Bytes in and out per second', samples,
              series: bytesSeries, format: bytesRate, step: binaryStep,
            }),
            legend(samples, bytesSeries, bytesRate));
          put(recordsChart,
            lineChart({
              testid: 'chart-records', title: 'Records in per second', samples,
              series: recordSeries, format: recordsRate,
            }),
            legend(samples, recordSeries, recordsRate));
        },
      };
    },
  };

  async function deleteTopic(name) {
    // The real confirm(): a native, accessible dialog that cannot be
    // dismissed by a stray refresh.
    if (!window.confirm(`Delete topic "${name}" and all its records? This cannot be undone.`)) return false;
    clearError();
    try {
      await api('DELETE', '/api/topics/' + seg(name));
    } catch (e) {
      showError(e, 'action');
      return false;
    }
    notice(`Topic ${name} deleted.`);
    return true;
  }

  views.topics = {
    title: 'Topics',
    mount(root) {
      const list = h('div', { class: 'table-wrap' });
      const form = onSubmit(h('form', { id: 'create-topic-form', 'data-testid': 'create-topic-form', class: 'panel form' },
        h('h2', {}, 'Create a topic'),
        h('div', { class: 'row' },
          field('create-topic-name', 'Name', h('input', {
            name: 'name', required: true, 'data-testid': 'create-topic-name', autocomplete: 'off',
          })),
          field('create-topic-partitions', 'Partitions', h('input', {
            name: 'partitions', type: 'number', min: 1, value: 1, required: true,
            'data-testid': 'create-topic-partitions',
          })),
          field('create-topic-routing', 'Routing', h('select', { name: 'routing', 'data-testid': 'create-topic-routing' },
            h('option', { value: 'hash' }, 'hash (by key)'),
            h('option', { value: 'direct' }, 'direct (bindings, exact key)'),
            h('option', { value: 'topic' }, 'topic (bindings, patterns)'))),
          field('create-topic-alternate', 'Alternate topic', h('input', {
            name: 'alternate_topic', 'data-testid': 'create-topic-alternate', autocomplete: 'off',
          }), 'optional: where unroutable records go'),
          field('create-topic-retention', 'Retention (ms)', h('input', {
            name: 'retention_ms', type: 'number', min: 1, 'data-testid': 'create-topic-retention',
          }), 'optional')),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', 'data-testid': 'create-topic-submit' }, 'Create topic'),
          h('button', { type: 'reset', class: 'secondary' }, 'Clear'))),
      async (f) => {
        const v = new FormData(f);
        const body = {
          name: String(v.get('name')).trim(),
          partitions: Number(v.get('partitions')),
          routing: String(v.get('routing')),
        };
        const alternate = String(v.get('alternate_topic') || '').trim();
        if (alternate) body.alternate_topic = alternate;
        const retention = String(v.get('retention_ms') || '').trim();
        if (retention) body.configs = { 'retention.ms': retention };
        await api('POST', '/api/topics', body);
        notice(`Topic ${body.name} created.`);
        await refresh();
      }, { reset: true });
      root.append(h('h1', {}, 'Topics'), list, form);

      async function refresh() {
        const topics = await api('GET', '/api/topics');
        const rows = topics.map((t) => ({
          attrs: { 'data-testid': 'topic-row-' + t.name },
          cells: {
            name: link('#/topics/' + seg(t.name), t.name),
            partitions: count(t.partitions),
            routing: t.routing,
            records: count(t.records),
            size: bytes(t.size_bytes),
            actions: h('button', {
              type: 'button', class: 'danger small', 'data-testid': 'delete-topic-' + t.name,
              'aria-label': `Delete topic ${t.name}`,
              onclick: async () => { if (await deleteTopic(t.name)) await refreshSafely(); },
            }, 'Delete'),
          },
        }));
        update(list, topics, () => dataTable({
          testid: 'topics-table',
          caption: `${topics.length} topic${topics.length === 1 ? '' : 's'}`,
          columns: [
            { key: 'name', label: 'Name' },
            { key: 'partitions', label: 'Partitions', numeric: true },
            { key: 'routing', label: 'Routing' },
            { key: 'records', label: 'Records', numeric: true },
            { key: 'size', label: 'Size', numeric: true },
            { key: 'actions', label: 'Actions' },
          ],
          rows,
          empty: 'No topics yet: create one below.',
        }));
      }
      return { refresh };
    },
  };

  views.topic = {
    title: 'Topic',
    mount(root, { name }) {
      const summary = h('div');
      const partitions = h('div', { class: 'table-wrap' });
      const bindings = h('div', { class: 'table-wrap' });
      const configs = h('div', { class: 'table-wrap' });
      const bindForm = onSubmit(h('form', { id: 'bind-form', 'data-testid': 'bind-form', class: 'panel form', hidden: true },
        h('h3', {}, 'Add a binding'),
        h('div', { class: 'row' },
          field('bind-key', 'Key or pattern', h('input', { name: 'key', required: true, 'data-testid': 'bind-key', autocomplete: 'off' })),
          field('bind-partitions', 'Partitions', h('input', {
            name: 'partitions', required: true, 'data-testid': 'bind-partitions', placeholder: '0,1', autocomplete: 'off',
          }), 'comma-separated')),
        h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-testid': 'bind-submit' }, 'Bind'))),
      async (f) => {
        const v = new FormData(f);
        const parts = parsePartitions(String(v.get('partitions')));
        await api('POST', `/api/topics/${seg(name)}/bindings`, { key: String(v.get('key')), partitions: parts });
        notice(`Bound ${v.get('key')} to partitions ${parts.join(', ')}.`);
        await refresh();
      }, { reset: true });
      root.append(
        h('p', { class: 'crumbs' }, link('#/topics', '← Topics')),
        h('h1', {}, 'Topic ', h('span', { 'data-testid': 'topic-name' }, name)),
        summary,
        h('h2', {}, 'Partitions'), partitions,
        h('h2', {}, 'Bindings'), bindings, bindForm,
        h('h2', {}, 'Configuration'), configs,
        h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'danger', 'data-testid': 'delete-topic',
          onclick: async () => { if (await deleteTopic(name)) location.hash = '#/topics'; },
        }, 'Delete topic')));

      async function refresh() {
        const [t, parts] = await Promise.all([
          api('GET', '/api/topics/' + seg(name)),
          api('GET', `/api/topics/${seg(name)}/partitions`),
        ]);
        const records = parts.reduce((n, p) => n + (p.log_end_offset - p.log_start_offset), 0);
        update(summary, [t, parts], () => facts([
          ['Routing', t.routing, 'topic-routing'],
          ['Partitions', count(t.partitions), 'topic-partitions'],
          ['Records kept', count(records), 'topic-records'],
          ['Size on disk', bytes(t.size_bytes), 'topic-size'],
          ['Alternate topic', t.alternate_topic ? link('#/topics/' + seg(t.alternate_topic), t.alternate_topic) : null, 'topic-alternate'],
        ]));
        update(partitions, parts, () => dataTable({
          testid: 'partitions-table',
          columns: [
            { key: 'partition', label: 'Partition', numeric: true },
            { key: 'start', label: 'Start offset', numeric: true },
            { key: 'end', label: 'End offset', numeric: true },
            { key: 'hw', label: 'High watermark', numeric: true },
            { key: 'records', label: 'Records', numeric: true },
            { key: 'size', label: 'Size', numeric: true },
            { key: 'segments', label: 'Segments', numeric: true },
            { key: 'browse', label: 'Messages' },
          ],
          rows: parts.map((p) => ({
            attrs: { 'data-testid': 'partition-row-' + p.partition },
            cells: {
              partition: String(p.partition),
              start: count(p.log_start_offset),
              end: count(p.log_end_offset),
              hw: count(p.high_watermark),
              records: count(p.log_end_offset - p.log_start_offset),
              size: bytes(p.size_bytes),
              segments: count(p.segments),
              browse: link(`#/messages?topic=${seg(name)}&partition=${p.partition}&offset=${p.log_start_offset}`, 'Browse',
                { 'aria-label': `Browse partition ${p.partition}` }),
            },
          })),
          empty: 'No partitions.',
        }));
        const bound = Array.isArray(t.bindings) ? t.bindings : [];
        bindForm.hidden = t.routing === 'hash';
        update(bindings, [t.routing, bound], () => t.routing === 'hash' && bound.length === 0
          ? h('p', { class: 'muted' }, 'This topic routes by key hash: bindings apply to direct and topic routing.')
          : dataTable({
            testid: 'bindings-table',
            columns: [
              { key: 'key', label: t.routing === 'topic' ? 'Pattern' : 'Key' },
              { key: 'partitions', label: 'Partitions' },
              { key: 'actions', label: 'Actions' },
            ],
            rows: bound.map((b) => ({
              attrs: { 'data-testid': 'binding-row-' + b.key },
              cells: {
                key: h('code', {}, b.key),
                partitions: b.partitions.join(', '),
                actions: h('button', {
                  type: 'button', class: 'danger small', 'aria-label': `Remove binding ${b.key}`,
                  onclick: async () => {
                    clearError();
                    try {
                      await api('DELETE', `/api/topics/${seg(name)}/bindings`, { key: b.key, partitions: b.partitions });
                      notice(`Binding ${b.key} removed.`);
                      await refresh();
                    } catch (e) {
                      showError(e, 'action');
                    }
                  },
                }, 'Remove'),
              },
            })),
            empty: 'No bindings: records with a routing key are unroutable until one is added.',
          }));
        const cfg = Object.entries(t.configs || {}).sort(([a], [b]) => a.localeCompare(b));
        update(configs, cfg, () => dataTable({
          testid: 'configs-table',
          columns: [{ key: 'key', label: 'Key' }, { key: 'value', label: 'Value' }],
          rows: cfg.map(([k, v]) => ({ cells: { key: h('code', {}, k), value: String(v) } })),
          empty: 'No configuration overrides.',
        }));
      }
      return { refresh };
    },
  };

  function parsePartitions(text) {
    const parts = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    if (parts.length === 0 || parts.some((p) => !Number.isInteger(p) || p < 0)) {
      throw new ApiError(0, 'INVALID_REQUEST', `"${text}" is not a list of partition numbers like 0,1`);
    }
    return parts;
  }

  views.groups = {
    title: 'Groups',
    mount(root) {
      const list = h('div', { class: 'table-wrap' });
      root.append(h('h1', {}, 'Groups'), list);
      return {
        async refresh() {
          const groups = await api('GET', '/api/groups');
          update(list, groups, () => dataTable({
            testid: 'groups-table',
            caption: `${groups.length} group${groups.length === 1 ? '' : 's'}`,
            columns: [
              { key: 'name', label: 'Name' },
              { key: 'kind', label: 'Kind' },
              { key: 'state', label: 'State' },
              { key: 'members', label: 'Members', numeric: true },
              { key: 'lag', label: 'Lag', numeric: true },
            ],
            rows: groups.map((g) => ({
              // A name can be a consumer group and a share group at once.
              attrs: { 'data-testid': `group-row-${g.kind}-${g.name}` },
              cells: {
                name: link(`#/groups/${seg(g.name)}${g.kind === 'share' ? '?kind=share' : ''}`, g.name),
                kind: g.kind,
                state: g.state,
                members: count(g.members),
                lag: count(g.lag),
              },
            })),
            empty: 'No groups yet: they appear when a consumer joins one.',
          }));
        },
      };
    },
  };

  views.group = {
    title: 'Group',
    mount(root, { name, params }) {
      const kind = params.get('kind') === 'share' ? 'share' : 'consumer';
      const summary = h('div');
      const members = h('div', { class: 'table-wrap' });
      const offsets = h('div', { class: 'table-wrap' });
      root.append(
        h('p', { class: 'crumbs' }, link('#/groups', '← Groups')),
        h('h1', {}, 'Group ', h('span', { 'data-testid': 'group-name' }, name)),
        summary,
        h('h2', {}, 'Lag per partition'), offsets,
        h('h2', {}, 'Members'), members);
      return {
        async refresh() {
          const g = await api('GET', `/api/groups/${seg(name)}${kind === 'share' ? '?kind=share' : ''}`);
          const rows = Array.isArray(g.offsets) ? g.offsets : [];
          const lag = rows.reduce((n, o) => n + (Number(o.lag) || 0), 0);
          update(summary, g, () => facts([
            ['Kind', g.kind, 'group-kind'],
            ['State', g.state, 'group-state'],
            ['Generation', count(g.generation), 'group-generation'],
            ['Members', count((g.members || []).length), 'group-members'],
            ['Total lag', count(lag), 'group-lag'],
          ]));
          update(offsets, rows, () => dataTable({
            testid: 'group-offsets-table',
            columns: [
              { key: 'topic', label: 'Topic' },
              { key: 'partition', label: 'Partition', numeric: true },
              { key: 'committed', label: 'Committed offset', numeric: true },
              { key: 'end', label: 'Log end offset', numeric: true },
              { key: 'lag', label: 'Lag', numeric: true },
              { key: 'owner', label: 'Owner' },
            ],
            rows: rows.map((o) => ({
              attrs: { 'data-testid': `group-offset-${o.topic}-${o.partition}` },
              cells: {
                topic: link('#/topics/' + seg(o.topic), o.topic),
                partition: String(o.partition),
                committed: o.committed_offset === null ? null : count(o.committed_offset),
                end: o.log_end_offset === null ? null : count(o.log_end_offset),
                lag: o.lag === null ? null : count(o.lag),
                owner: o.owner === null ? null : h('code', {}, o.owner),
              },
            })),
            empty: 'No committed offsets and no assignment.',
          }));
          update(members, g.members, () => dataTable({
            testid: 'group-members-table',
            columns: [
              { key: 'member', label: 'Member id' },
              { key: 'client', label: 'Client id' },
              { key: 'partitions', label: 'Partitions' },
            ],
            rows: (g.members || []).map((m) => ({
              attrs: { 'data-testid': 'member-row-' + m.member_id },
              cells: {
                member: h('code', {}, m.member_id),
                client: m.client_id === null ? null : m.client_id,
                partitions: (m.partitions || []).map((p) => `${p.topic}-${p.partition}`).join(', ') || none(),
              },
            })),
            empty: 'No members right now.',
          }));
        },
      };
    },
  };

  views.messages = {
    title: 'Messages',
    mount(root, { params }) {
      const topicSelect = h('select', { name: 'topic', required: true, 'data-testid': 'messages-topic' },
        h('option', { value: '' }, 'choose a topic'));
      const partitionInput = h('input', {
        name: 'partition', type: 'number', min: 0, value: params.get('partition') || 0, required: true,
        'data-testid': 'messages-partition',
      });
      const offsetInput = h('input', {
        name: 'offset', type: 'number', min: 0, value: params.get('offset') || 0, required: true,
        'data-testid': 'messages-offset',
      });
      const limitInput = h('input', {
        name: 'limit', type: 'number', min: 1, max: 1000, value: params.get('limit') || 20, required: true,
        'data-testid': 'messages-limit',
      });
      const status = h('p', { class: 'muted', 'data-testid': 'messages-status', 'aria-live': 'polite' },
        'Pick a topic, partition and offset.');
      const results = h('div', { class: 'table-wrap' });
      const next = h('button', { type: 'button', 'data-testid': 'messages-next', disabled: true }, 'Next page →');
      // What is on screen: refresh() re-reads this page (new records appear
      // while it is not full); "Next page" moves to next_offset.
      let shown = params.get('topic') ? {
        topic: params.get('topic'),
        partition: Number(params.get('partition') || 0),
        offset: Number(params.get('offset') || 0),
        limit: Number(params.get('limit') || 20),
      } : null;
      let nextOffset = null;
      let topicsKnown = '';

      const form = onSubmit(h('form', { id: 'messages-form', 'data-testid': 'messages-form', class: 'panel form' },
        h('div', { class: 'row' },
          field('messages-topic', 'Topic', topicSelect),
          field('messages-partition', 'Partition', partitionInput),
          field('messages-offset', 'Offset', offsetInput),
          field('messages-limit', 'Limit', limitInput, 'at most 1000')),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', 'data-testid': 'messages-show' }, 'Show'),
          next)),
      async () => {
        shown = {
          topic: topicSelect.value,
          partition: Number(partitionInput.value),
          offset: Number(offsetInput.value),
          limit: Number(limitInput.value),
        };
        await load();
      });
      next.addEventListener('click', async () => {
        if (!shown || nextOffset === null) return;
        shown = { ...shown, offset: nextOffset };
        offsetInput.value = String(nextOffset);
        clearError();
        try {
          await load();
        } catch (e) {
          showError(e, 'action');
        }
      });
      // The partition field stops at the chosen topic's last partition.
      const limitPartition = () => {
        const opt = topicSelect.selectedOptions[0];
        const n = opt ? Number(opt.dataset.partitions) : NaN;
        if (Number.isInteger(n) && n > 0) partitionInput.max = String(n - 1);
        else partitionInput.removeAttribute('max');
      };
      topicSelect.addEventListener('change', limitPartition);
      root.append(h('h1', {}, 'Messages'), form, status, results);

      async function loadTopics() {
        const topics = await api('GET', '/api/topics');
        const names = topics.map((t) => t.name).join('\n');
        if (names === topicsKnown) return;
        topicsKnown = names;
        const want = topicSelect.value || (shown && shown.topic) || '';
        topicSelect.replaceChildren(h('option', { value: '' }, 'choose a topic'),
          ...topics.map((t) => h('option', { value: t.name, 'data-partitions': t.partitions }, t.name)));
        if (topics.some((t) => t.name === want)) topicSelect.value = want;
        limitPartition();
      }

      async function load() {
        if (!shown || !shown.topic) {
          update(results, null, () => []);
          status.textContent = 'Pick a topic, partition and offset.';
          next.disabled = true;
          return;
        }
        const { topic, partition, offset, limit } = shown;
        // Keep the address shareable without a hashchange (which would remount).
        history.replaceState(null, '',
          `#/messages?topic=${seg(topic)}&partition=${partition}&offset=${offset}&limit=${limit}`);
        const page = await api('GET',
          `/api/topics/${seg(topic)}/partitions/${partition}/messages?offset=${offset}&limit=${limit}`);
        const msgs = Array.isArray(page.messages) ? page.messages : [];
        nextOffset = page.next_offset;
        next.disabled = msgs.length === 0 && page.next_offset >= page.high_watermark;
        status.textContent = msgs.length === 0
          ? `No records at offset ${count(offset)} of ${topic}-${partition} (high watermark ${count(page.high_watermark)}).`
          : `${topic}-${partition}: offsets ${count(msgs[0].offset)} to ${count(msgs[msgs.length - 1].offset)}` +
            ` of ${count(page.high_watermark)} (high watermark); next page starts at ${count(page.next_offset)}.`;
        update(results, page, () => dataTable({
          testid: 'messages-table',
          columns: [
            { key: 'offset', label: 'Offset', numeric: true },
            { key: 'timestamp', label: 'Timestamp' },
            { key: 'key', label: 'Key' },
            { key: 'value', label: 'Value' },
            { key: 'headers', label: 'Headers' },
          ],
          rows: msgs.map((m) => ({
            attrs: { 'data-testid': 'message-row-' + m.offset },
            cells: {
              offset: String(m.offset),
              timestamp: timestamp(m.timestamp_ms),
              key: payload(m.key),
              value: payload(m.value),
              headers: (m.headers || []).length === 0 ? none() : h('ul', { class: 'headers' },
                m.headers.map((hd) => h('li', {}, h('code', {}, hd.key), ' = ', payload(hd.value)))),
            },
          })),
          empty: 'No records on this page.',
        }));
      }

      return {
        async refresh() {
          await loadTopics();
          await load();
        },
      };
    },
  };

  views.connections = {
    title: 'Connections',
    mount(root) {
      const list = h('div', { class: 'table-wrap' });
      root.append(h('h1', {}, 'Connections'), list);
      return {
        async refresh() {
          const conns = await api('GET', '/api/connections');
          const now = Date.now();
          put(list, dataTable({
            testid: 'connections-table',
            caption: `${conns.length} open connection${conns.length === 1 ? '' : 's'} (native protocol)`,
            columns: [
              { key: 'id', label: 'Id', numeric: true },
              { key: 'peer', label: 'Peer' },
              { key: 'user', label: 'User' },
              { key: 'tls', label: 'TLS' },
              { key: 'since', label: 'Connected' },
              { key: 'requests', label: 'Requests', numeric: true },
              { key: 'in', label: 'Bytes in', numeric: true },
              { key: 'out', label: 'Bytes out', numeric: true },
            ],
            rows: conns.map((c) => ({
              attrs: { 'data-testid': 'connection-row-' + c.id },
              cells: {
                id: String(c.id),
                peer: h('code', {}, c.peer),
                user: c.user,
                tls: c.tls ? 'yes' : 'no',
                since: h('span', { title: timestamp(c.connected_at_ms) },
                  duration((now - c.connected_at_ms) / 1000) + ' ago'),
                requests: count(c.requests),
                in: bytes(c.bytes_in),
                out: bytes(c.bytes_out),
              },
            })),
            empty: 'No open connections.',
          }));
        },
      };
    },
  };

  views.notFound = {
    title: 'Not found',
    mount(root) {
      root.append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', link('#/overview', 'Go to the overview.')));
      return { async refresh() {} };
    },
  };

  // ---------------------------------------------------------------- routing and refresh

  /** The view and its arguments for the current location.hash. */
  function route() {
    const raw = location.hash.replace(/^#\/?/, '');
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    let parts;
    try {
      parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return { view: views.notFound, args: {}, nav: null };
    }
    const [first, second] = parts;
    if (parts.length === 0 || (first === 'overview' && parts.length === 1)) return { view: views.overview, args: {}, nav: 'overview' };
    if (first === 'topics' && parts.length === 1) return { view: views.topics, args: {}, nav: 'topics' };
    if (first === 'topics' && parts.length === 2) return { view: views.topic, args: { name: second }, nav: 'topics' };
    if (first === 'groups' && parts.length === 1) return { view: views.groups, args: {}, nav: 'groups' };
    if (first === 'groups' && parts.length === 2) return { view: views.group, args: { name: second, params }, nav: 'groups' };
    if (first === 'messages' && parts.length === 1) return { view: views.messages, args: { params }, nav: 'messages' };
    if (first === 'connections' && parts.length === 1) return { view: views.connections, args: {}, nav: 'connections' };
    return { view: views.notFound, args: {}, nav: null };
  }

  let current = null; // { refresh } of the mounted view
  let generation = 0; // bumps on every mount, so a late answer for an old view is ignored
  let inFlight = 0; // refreshes not yet answered (an old view's may still run)
  let lastRefresh = null;
  let loginShown = false;

  function render() {
    generation += 1;
    const { view, args, nav } = route();
    const root = $('view');
    root.replaceChildren();
    clearError();
    document.title = `${view.title}${args.name ? ' ' + args.name : ''} · Warren`;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.id === 'nav-' + nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    current = view.mount(root, args);
    refreshSafely();
  }

  /** Runs the view's refresh(); errors go to the banner. */
  async function refreshSafely() {
    if (!current || loginShown) return;
    const gen = generation;
    inFlight += 1;
    try {
      await current.refresh();
      if (gen !== generation) return;
      clearError('refresh');
      lastRefresh = Date.now();
    } catch (e) {
      if (gen === generation) showError(e, 'refresh');
    } finally {
      inFlight -= 1;
      showRefreshState();
    }
  }

  function showRefreshState() {
    let text = '';
    if (loginShown) text = '';
    else if (editing()) text = 'Paused while you edit';
    else if (lastRefresh !== null) text = 'Updated ' + clock(lastRefresh);
    $('refresh-state').textContent = text;
    $('refresh-state').dataset.state = editing() ? 'paused' : 'live';
  }

  function tick() {
    if (document.hidden || loginShown || inFlight > 0) return;
    if (editing()) {
      showRefreshState();
      return;
    }
    refreshSafely();
  }

  // ---------------------------------------------------------------- login

  function showLogin() {
    if (loginShown) return;
    loginShown = true;
    $('login').hidden = false;
    $('view').hidden = true;
    $('logout').hidden = true;
    clearError();
    showRefreshState();
    $('login-user').focus();
  }

  function hideLogin() {
    loginShown = false;
    $('login').hidden = true;
    $('view').hidden = false;
    $('logout').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  async function login(user, password) {
    // Basic auth carries UTF-8 bytes; btoa() takes one char per byte.
    const utf8 = new TextEncoder().encode(`${user}:${password}`);
    let binary = '';
    for (const b of utf8) binary += String.fromCharCode(b);
    let res;
    try {
      res = await fetch('/api/auth/token', {
        method: 'POST',
        headers: { Authorization: 'Basic ' + btoa(binary), Accept: 'application/json' },
        cache: 'no-store',
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
    } catch (e) {
      throw new ApiError(0, 'UNREACHABLE', 'Cannot reach the broker: ' + e.message);
    }
    const data = await decode(res, 'POST /api/auth/token');
    if (!data || typeof data.token !== 'string') {
      throw new ApiError(res.status, 'INVALID_RESPONSE', 'The broker answered the login without a token.');
    }
    sessionStorage.setItem(TOKEN_KEY, data.token);
  }

  function start() {
    $('error-dismiss').addEventListener('click', () => clearError());
    $('logout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $('logout').hidden = true;
      render();
    });
    $('logout').hidden = !sessionStorage.getItem(TOKEN_KEY);
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      try {
        await login($('login-user').value, $('login-password').value);
      } catch (e) {
        showError(e, 'action');
        return;
      }
      $('login-password').value = '';
      hideLogin();
      render();
    });
    window.addEventListener('hashchange', render);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
    document.addEventListener('focusin', showRefreshState);
    document.addEventListener('focusout', () => setTimeout(showRefreshState, 0));
    setInterval(tick, REFRESH_MS);
    render();
  }

  start();
})();
