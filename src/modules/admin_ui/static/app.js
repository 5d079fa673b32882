/* temel admin dashboard: plain JavaScript, no framework, no build step.
 * Every piece of data comes from the admin API with the bearer token from
 * POST /api/v1/auth/login (kept in sessionStorage for this tab only). The DOM
 * is built with textContent only (never innerHTML with data), and the page's
 * Content-Security-Policy allows no inline code. */
'use strict';

const S = { token: sessionStorage.getItem('temel.token'), me: null, timers: [] };
const $ = (id) => document.getElementById(id);

/* h('td', {class: 'num', on: {click: f}}, 'text', childNode, ...) */
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of kids.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2500);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || ('HTTP ' + status));
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, headers) {
  const o = { method, headers: Object.assign({}, headers || {}) };
  if (S.token) o.headers.Authorization = 'Bearer ' + S.token;
  if (body !== undefined) {
    o.headers['Content-Type'] = 'application/json';
    o.body = JSON.stringify(body);
  }
  const r = await fetch(path, o);
  const ct = r.headers.get('Content-Type') || '';
  const data = r.status === 204 ? null : ct.includes('json') ? await r.json() : await r.text();
  if (r.status === 401 && path !== '/api/v1/auth/login') {
    signOut('Your session ended; sign in again.');
    throw new ApiError(401, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

function fmtTime(t) { return t ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : ''; }

function badge(text, kind) { return h('span', { class: 'badge ' + (kind || '') }, text); }

/* cols: [{k: 'email', label: 'Email', f: (row) => node|string, num: true}] */
function table(cols, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c.label ?? c.k)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', { dataset: { id: r.id || '' } },
      cols.map((c) => h('td', { class: c.num ? 'num' : '' }, c.f ? c.f(r) : fmtCell(r[c.k]))))) :
      h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'nothing here'))));
}

function fmtCell(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return h('code', {}, JSON.stringify(v));
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
  return String(v);
}

function pager(meta, go) {
  if (!meta) return null;
  return h('div', { class: 'pager' },
    h('button', { class: 'secondary', disabled: meta.page <= 1, on: { click: () => go(meta.page - 1) } }, '‹ Prev'),
    h('span', { class: 'muted' }, `page ${meta.page} of ${Math.max(meta.pages, 1)} · ${meta.total} total`),
    h('button', { class: 'secondary', disabled: meta.page >= meta.pages, on: { click: () => go(meta.page + 1) } }, 'Next ›'));
}

function failBox(e) { return h('p', { class: 'error', role: 'alert' }, e.message); }

/* ---- charts (SVG, no library) ---- */

function barChart(items, opts) {
  if (!items.length) return h('p', { class: 'muted' }, 'no data yet');
  const w = (opts && opts.width) || 520, bh = 22, pad = 140, height = Math.max(items.length, 1) * (bh + 6) + 10;
  const max = Math.max(1, ...items.map((i) => i.value));
  const g = svg('svg', { class: 'chart', width: w, height, viewBox: `0 0 ${w} ${height}`, role: 'img' });
  items.forEach((it, n) => {
    const y = 6 + n * (bh + 6), bw = Math.max(1, Math.round((w - pad - 60) * it.value / max));
    g.append(svg('text', { x: 8, y: y + 15 }, it.label),
      svg('rect', { class: 'bar' + (it.bad ? ' bad' : ''), x: pad, y, width: bw, height: bh, rx: 3 }),
      svg('text', { x: pad + bw + 6, y: y + 15 }, String(it.value)));
  });
  return g;
}

function lineChart(points, label) {
  const w = 520, hgt = 140, pad = 30;
  const max = Math.max(1, ...points);
  const g = svg('svg', { class: 'chart', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: 'img' });
  const step = points.length > 1 ? (w - 2 * pad) / (points.length - 1) : 0;
  const pts = points.map((v, i) => `${pad + i * step},${hgt - pad - (hgt - 2 * pad) * v / max}`).join(' ');
  g.append(svg('text', { x: 8, y: 16 }, `${label} (max ${max.toFixed(1)})`),
    svg('line', { x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, stroke: '#ccc' }),
    svg('polyline', { class: 'line', points: pts }));
  return g;
}

/* Prometheus text → [{name, labels: {}, value}] */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const kv of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function sumBy(metrics, name, key) {
  const acc = {};
  for (const m of metrics) if (m.name === name) acc[key(m.labels)] = (acc[key(m.labels)] || 0) + m.value;
  return acc;
}

/* ---- views ---- */

const views = {};

views.users = async (el) => {
  const q = h('input', { id: 'user-q', placeholder: 'email or name' });
  const role = h('select', { id: 'user-role' }, ['', 'user', 'moderator', 'admin', 'guest'].map((r) => h('option', { value: r }, r || 'any role')));
  const out = h('div');
  const load = async (page) => {
    out.replaceChildren('loading…');
    try {
      const d = await api('GET', '/api/v1/users' + qs({ q: q.value.trim(), role: role.value, page: page || 1, limit: 20 }));
      out.replaceChildren(table([
        { k: 'email', f: (u) => u.email || u.phone || '(guest)' }, { k: 'name' },
        { k: 'role', f: (u) => roleSelect(u, () => load(d.meta.page)) },
        { k: 'status', f: (u) => badge(u.status, u.status === 'active' ? 'ok' : 'bad') },
        { k: 'created_at', label: 'Created' },
        { k: 'actions', label: '', f: (u) => [
          h('button', { class: 'secondary ban', on: { click: () => setStatus(u, u.status === 'banned' ? 'active' : 'banned', () => load(d.meta.page)) } },
            u.status === 'banned' ? 'Unban' : 'Ban'), ' ',
          h('a', { href: '#credits/' + u.id, class: 'credits-link' }, 'Credits')] },
      ], d.data, { id: 'users-table' }), pager(d.meta, load));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  el.append(h('h1', {}, 'Users'),
    h('form', { class: 'row', on: { submit: (ev) => { ev.preventDefault(); load(1); } } },
      h('label', {}, 'Search', q), h('label', {}, 'Role', role), h('button', { type: 'submit' }, 'Search')), out);
  await load(1);
};

function roleSelect(u, done) {
  const s = h('select', { class: 'role', 'aria-label': 'role of ' + (u.email || u.id) },
    ['user', 'moderator', 'admin'].map((r) => h('option', { value: r, selected: r === u.role }, r)));
  if (u.role === 'guest') return u.role;
  s.addEventListener('change', async () => {
    try { await api('PATCH', '/api/v1/users/' + u.id, { role: s.value }); toast(`${u.email}: role ${s.value}`); done(); }
    catch (e) { toast(e.message); s.value = u.role; }
  });
  return s;
}

async function setStatus(u, status, done) {
  try { await api('PATCH', '/api/v1/users/' + u.id, { status }); toast(`${u.email || u.id}: ${status}`); done(); }
  catch (e) { toast(e.message); }
}

views.credits = async (el, arg) => {
  const user = h('input', { id: 'credit-user', placeholder: 'user id', value: arg || '', size: 40 });
  const amount = h('input', { id: 'credit-amount', type: 'number', min: 1, value: 100 });
  const reason = h('input', { id: 'credit-reason', placeholder: 'reason', value: 'support' });
  const out = h('div', { id: 'ledger' });
  const info = h('p', { class: 'muted', id: 'credit-user-info' });
  const load = async (page) => {
    if (!user.value.trim()) { out.replaceChildren(h('p', { class: 'muted' }, 'Pick a user (Users → Credits) or paste an id.')); return; }
    out.replaceChildren('loading…');
    try {
      const [u, d] = await Promise.all([api('GET', '/api/v1/users/' + encodeURIComponent(user.value.trim())),
        api('GET', '/api/v1/admin/credits/transactions' + qs({ user_id: user.value.trim(), page: page || 1, limit: 20 }))]);
      info.textContent = `${u.email || u.phone || '(guest)'} · ${u.name || ''} · ${u.role}`;
      out.replaceChildren(h('div', { class: 'cards' }, h('div', { class: 'card' }, h('div', { class: 'k' }, 'ledger entries'),
        h('div', { class: 'v', id: 'ledger-count' }, String(d.meta.total)))),
        table([{ k: 'created_at', label: 'When' }, { k: 'type' }, { k: 'amount', num: true }, { k: 'reference' }, { k: 'reservation_id', label: 'Reservation' }],
          d.data, { id: 'ledger-table' }), pager(d.meta, load));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  const grant = async (ev) => {
    ev.preventDefault();
    try {
      const t = await api('POST', '/api/v1/admin/credits/grant',
        { user_id: user.value.trim(), amount: Number(amount.value), reason: reason.value.trim() || 'admin grant' },
        { 'Idempotency-Key': crypto.randomUUID() });
      toast(`granted ${t.amount} credits`);
      await load(1);
    } catch (e) { toast(e.message); }
  };
  el.append(h('h1', {}, 'Credits'),
    h('form', { class: 'row', on: { submit: (ev) => { ev.preventDefault(); location.hash = '#credits/' + user.value.trim(); } } },
      h('label', {}, 'User', user), h('button', { type: 'submit', class: 'secondary' }, 'Show ledger')), info,
    h('form', { class: 'row', id: 'grant-form', on: { submit: grant } },
      h('label', {}, 'Amount', amount), h('label', {}, 'Reason', reason), h('button', { type: 'submit', id: 'credit-grant' }, 'Grant credits')),
    h('h2', {}, 'Ledger'), out);
  await load(1);
};

views.ai = async (el) => {
  el.append(h('h1', {}, 'AI providers and usage'));
  try {
    const [p, u] = await Promise.all([api('GET', '/api/v1/admin/ai/providers?limit=100'), api('GET', '/api/v1/admin/analytics/ai-usage')]);
    const t = u.totals || {};
    el.append(h('div', { class: 'cards' }, [['requests', t.requests], ['succeeded', t.succeeded], ['failed', t.failed],
      ['cache hit rate', ((t.cache_hit_rate || 0) * 100).toFixed(1) + ' %'], ['credits', t.credits],
      ['cost', '$' + ((t.cost_usd_micros || 0) / 1e6).toFixed(4)], ['latency p50 / p95', `${t.latency_p50_ms} / ${t.latency_p95_ms} ms`]]
      .map(([k, v]) => h('div', { class: 'card' }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, String(v ?? 0))))),
    h('p', { class: 'muted' }, `${fmtTime(u.from)} – ${fmtTime(u.to)}`),
    h('h2', {}, 'Requests by model'),
    barChart((u.models || []).map((m) => ({ label: m.model || m.name || '?', value: m.requests || 0 }))),
    h('h2', {}, 'Providers'),
    table([{ k: 'name' }, { k: 'kind' }, { k: 'base_url', label: 'Base URL' },
      { k: 'enabled', f: (r) => badge(r.enabled ? 'enabled' : 'disabled', r.enabled ? 'ok' : 'warn') },
      { k: 'models', f: (r) => (r.models || []).map((m) => m.name).join(', ') },
      { k: 'keys', f: (r) => `${(r.keys || []).filter((k) => k.status === 'active').length} active / ${(r.keys || []).length}` }], p.data));
  } catch (e) { el.append(failBox(e)); }
};

views.jobs = async (el) => {
  const state = h('select', { id: 'job-state' }, ['dead', 'failed', 'retryable', 'running', 'available', 'scheduled', 'succeeded', 'cancelled', '']
    .map((s) => h('option', { value: s }, s || 'any state')));
  const queues = h('div');
  const out = h('div');
  const loadQueues = async () => {
    try {
      const q = await api('GET', '/api/v1/admin/queues?limit=100');
      queues.replaceChildren(table([{ k: 'queue' },
        ...['available', 'scheduled', 'running', 'retryable', 'succeeded', 'failed', 'dead', 'cancelled']
          .map((s) => ({ k: s, num: true, f: (r) => String(r.counts[s]) })), { k: 'concurrency', num: true }],
      q.data.map((r) => Object.assign({ id: r.queue }, r)), { id: 'queues-table' }));
    } catch (e) { queues.replaceChildren(failBox(e)); }
  };
  const act = async (j, how) => {
    try {
      if (how === 'retry') await api('POST', `/api/v1/admin/jobs/${j.id}/retry`, {});
      else await api('DELETE', `/api/v1/admin/jobs/${j.id}`);
      toast(`${how === 'retry' ? 'retried' : 'cancelled'} ${j.kind} ${j.id.slice(-8)}`);
      await Promise.all([load(1), loadQueues()]);
    } catch (e) { toast(e.message); }
  };
  const load = async (page) => {
    out.replaceChildren('loading…');
    try {
      const d = await api('GET', '/api/v1/admin/jobs' + qs({ state: state.value, page: page || 1, limit: 20 }));
      out.replaceChildren(table([{ k: 'kind' }, { k: 'queue' }, { k: 'state', f: (j) => badge(j.state,
        j.state === 'succeeded' ? 'ok' : ['dead', 'failed'].includes(j.state) ? 'bad' : 'warn') },
      { k: 'attempt', num: true, f: (j) => `${j.attempt}/${j.max_attempts}` }, { k: 'last_error', label: 'Last error' },
      { k: 'updated_at', label: 'Updated' },
      { k: 'actions', label: '', f: (j) => [
        ['failed', 'dead', 'cancelled'].includes(j.state) ? h('button', { class: 'retry', on: { click: () => act(j, 'retry') } }, 'Retry') : null,
        ['available', 'scheduled', 'retryable'].includes(j.state) ? h('button', { class: 'danger cancel', on: { click: () => act(j, 'cancel') } }, 'Cancel') : null] },
      ], d.data, { id: 'jobs-table' }), pager(d.meta, load));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  state.addEventListener('change', () => load(1));
  el.append(h('h1', {}, 'Jobs and queues'), h('h2', {}, 'Queues'), queues,
    h('h2', {}, 'Jobs'), h('div', { class: 'row' }, h('label', {}, 'State', state)), out);
  await Promise.all([loadQueues(), load(1)]);
};

views.orders = async (el) => {
  const status = h('select', { id: 'order-status' }, ['', 'pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded']
    .map((s) => h('option', { value: s }, s || 'any status')));
  const out = h('div');
  const load = async (page) => {
    try {
      const d = await api('GET', '/api/v1/admin/orders' + qs({ status: status.value, page: page || 1, limit: 20 }));
      out.replaceChildren(table([{ k: 'id', f: (o) => h('code', {}, o.id) }, { k: 'user_id', label: 'User', f: (o) => h('code', {}, o.user_id || '') },
        { k: 'status', f: (o) => badge(o.status, o.status === 'paid' || o.status === 'delivered' ? 'ok' : '') },
        { k: 'total', num: true, f: (o) => `${((o.total || 0) / 100).toFixed(2)} ${o.currency || ''}` }, { k: 'created_at', label: 'Created' }],
      d.data, { id: 'orders-table' }), pager(d.meta, load));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  status.addEventListener('change', () => load(1));
  el.append(h('h1', {}, 'Orders'), h('div', { class: 'row' }, h('label', {}, 'Status', status)), out);
  await load(1);
};

views.audit = async (el) => {
  const chain = h('p', { id: 'chain-status' }, 'checking the chain…');
  const action = h('input', { id: 'audit-action', placeholder: 'e.g. credits.grant' });
  const category = h('input', { id: 'audit-category', placeholder: 'e.g. users' });
  const out = h('div');
  const load = async (page) => {
    try {
      const d = await api('GET', '/api/v1/admin/audit-logs' + qs({ action: action.value.trim(), category: category.value.trim(), page: page || 1, limit: 25 }));
      out.replaceChildren(table([{ k: 'seq', num: true }, { k: 'created_at', label: 'When' }, { k: 'actor_id', label: 'Actor', f: (a) => h('code', {}, a.actor_id || 'system') },
        { k: 'action' }, { k: 'category' }, { k: 'target', f: (a) => `${a.target_type || ''} ${a.target_id || ''}` },
        { k: 'success', f: (a) => badge(a.success ? 'ok' : 'failed', a.success ? 'ok' : 'bad') }, { k: 'ip', label: 'IP' }],
      d.data, { id: 'audit-table' }), pager(d.meta, load));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  el.append(h('h1', {}, 'Audit log'), chain,
    h('form', { class: 'row', on: { submit: (ev) => { ev.preventDefault(); load(1); } } },
      h('label', {}, 'Action', action), h('label', {}, 'Category', category), h('button', { type: 'submit' }, 'Filter')), out);
  api('GET', '/api/v1/admin/audit-logs/verify').then((v) => {
    chain.replaceChildren('Hash chain: ', v.ok ? badge('intact', 'ok') : badge('BROKEN', 'bad'),
      v.ok ? ` ${v.entries} entries (${v.keyed_entries} with MAC)` : ` at seq ${v.broken_at && v.broken_at.seq}: ${v.broken_at && v.broken_at.reason}`);
  }).catch((e) => chain.replaceChildren(failBox(e)));
  await load(1);
};

views.health = async (el) => {
  const cards = h('div', { class: 'cards', id: 'health-cards' });
  const charts = h('div');
  const rate = [];
  let last = null;
  const tick = async () => {
    try {
      const [hl, mt] = await Promise.all([api('GET', '/health'), api('GET', '/metrics')]);
      cards.replaceChildren(h('div', { class: 'card' }, h('div', { class: 'k' }, 'status'),
        h('div', { class: 'v' }, badge(hl.status, hl.status === 'healthy' ? 'ok' : 'bad'))),
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'uptime'), h('div', { class: 'v' }, `${hl.uptime_s} s`)),
      ...Object.entries(hl.services || {}).map(([name, s]) => h('div', { class: 'card' }, h('div', { class: 'k' }, name),
        h('div', { class: 'v' }, badge(s.status, s.status === 'up' ? 'ok' : 'bad')),
        h('div', { class: 'muted mono' }, Object.entries(s).filter(([k]) => k !== 'status').map(([k, v]) => `${k}: ${v}`).join(' · ')))));
      const m = parseMetrics(mt);
      const byClass = sumBy(m, 'temel_http_requests_total', (l) => (l.status || '?')[0] + 'xx');
      const total = Object.values(byClass).reduce((a, b) => a + b, 0);
      const now = performance.now();
      if (last !== null) rate.push(Math.max(0, (total - last.total) / Math.max(0.001, (now - last.at) / 1000)));
      if (rate.length > 60) rate.shift();
      last = { total, at: now };
      const jobs = sumBy(m, 'temel_jobs_total', (l) => l.outcome || l.result || l.status || '?');
      charts.replaceChildren(h('h2', {}, 'HTTP requests by status class'),
        barChart(Object.entries(byClass).sort().map(([k, v]) => ({ label: k, value: v, bad: k === '5xx' }))),
        h('h2', {}, 'Request rate (per second, sampled every 5 s)'),
        rate.length ? lineChart(rate.length > 1 ? rate : [rate[0], rate[0]], 'req/s') : h('p', { class: 'muted' }, 'measuring…'),
        h('h2', {}, 'Job outcomes'), barChart(Object.entries(jobs).sort().map(([k, v]) => ({ label: k, value: v, bad: k === 'dead' || k === 'failed' }))));
    } catch (e) { charts.replaceChildren(failBox(e)); }
  };
  el.append(h('h1', {}, 'Health and metrics'), cards, charts);
  await tick();
  S.timers.push(setTimeout(tick, 1000)); /* a first rate soon, then every 5 s */
  S.timers.push(setInterval(tick, 5000));
};

views.webhooks = async (el) => {
  const out = h('div');
  const deliveries = h('div');
  const show = async (w) => {
    try {
      const d = await api('GET', `/api/v1/webhooks/${w.id}/deliveries?limit=20`);
      deliveries.replaceChildren(h('h2', {}, 'Deliveries to ' + w.url),
        table([{ k: 'created_at', label: 'When' }, { k: 'event' }, { k: 'state', f: (x) => badge(x.state, x.state === 'succeeded' ? 'ok' : x.state === 'failed' ? 'bad' : 'warn') },
          { k: 'attempts', num: true }, { k: 'response_status', label: 'HTTP', num: true }, { k: 'error' },
          { k: 'actions', label: '', f: (x) => h('button', { class: 'secondary', on: { click: async () => {
            try { await api('POST', `/api/v1/webhooks/${w.id}/deliveries/${x.id}/redeliver`, {}); toast('redelivery queued'); show(w); } catch (e) { toast(e.message); }
          } } }, 'Redeliver') }], d.data));
    } catch (e) { deliveries.replaceChildren(failBox(e)); }
  };
  try {
    const d = await api('GET', '/api/v1/webhooks?limit=100');
    out.replaceChildren(table([{ k: 'url', label: 'URL' }, { k: 'events', f: (w) => w.events.join(', ') },
      { k: 'active', f: (w) => badge(w.active ? 'active' : 'off', w.active ? 'ok' : 'warn') }, { k: 'created_at', label: 'Created' },
      { k: 'actions', label: '', f: (w) => h('button', { class: 'secondary', on: { click: () => show(w) } }, 'Deliveries') }], d.data));
  } catch (e) { out.replaceChildren(failBox(e)); }
  el.append(h('h1', {}, 'Outbound webhooks'), out, deliveries);
};

views.backups = async (el) => {
  const out = h('div');
  const load = async () => {
    try {
      const d = await api('GET', '/api/v1/admin/backups?limit=100');
      out.replaceChildren(table([{ k: 'created_at', label: 'When' }, { k: 'file', f: (b) => h('code', {}, b.file) }, { k: 'engine' },
        { k: 'schema_version', label: 'Schema', num: true }, { k: 'size', num: true, f: (b) => (b.size / 1048576).toFixed(2) + ' MiB' },
        { k: 'duration_ms', label: 'Took', num: true, f: (b) => b.duration_ms + ' ms' }, { k: 'sha256', f: (b) => h('code', {}, b.sha256.slice(0, 16) + '…') }], d.data));
    } catch (e) { out.replaceChildren(failBox(e)); }
  };
  el.append(h('h1', {}, 'Backups'), h('div', { class: 'row' }, h('button', { on: { click: async () => {
    try { const r = await api('POST', '/api/v1/admin/backups', {}); toast('backup job ' + r.data.job_id.slice(-8) + ' queued'); } catch (e) { toast(e.message); }
  } } }, 'Back up now'), h('button', { class: 'secondary', on: { click: load } }, 'Refresh')), out);
  await load();
};

/* ---- shell: sign-in and routing ---- */

function signOut(msg) {
  S.token = null;
  S.me = null;
  sessionStorage.removeItem('temel.token');
  showLogin(msg);
}

function showLogin(msg) {
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('view').replaceChildren();
  $('login').hidden = false;
  $('login-error').textContent = msg || '';
}

async function route() {
  for (const t of S.timers) { clearInterval(t); clearTimeout(t); }
  S.timers = [];
  if (!S.me) return;
  const [name, arg] = (location.hash.slice(1) || 'users').split('/');
  const view = views[name] || views.users;
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.getAttribute('href') === '#' + name);
  const el = h('div', { id: 'view-' + name });
  $('view').replaceChildren(el);
  await view(el, arg ? decodeURIComponent(arg) : undefined);
}

async function start() {
  try {
    S.me = await api('GET', '/api/v1/me');
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
    return;
  }
  if (S.me.role !== 'admin') {
    signOut('This account is not an administrator.');
    return;
  }
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = S.me.email || S.me.id;
  await route();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      const r = await api('POST', '/api/v1/auth/login', { email: $('email').value.trim(), password: $('password').value });
      S.token = r.access_token;
      sessionStorage.setItem('temel.token', S.token);
      $('password').value = '';
      await start();
    } catch (e) {
      $('login-error').textContent = e.status === 401 ? 'Wrong email or password.' : e.message;
    }
  });
  $('logout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', route);
  if (S.token) start(); else showLogin();
});
