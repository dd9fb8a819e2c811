// #/mci/{ns}/{mci}: its VMs with state, place, last sample age and an hour of CPU; the
// manual actions the API takes, each confirmed first; the MCI's network latency if known.
import { get, getSoft, post, seg, ApiError } from './api.js';
import { h, replace, table } from './dom.js';
import { sparkline } from './svg.js';
import { confirmDialog } from './confirm.js';

// The manual actions a VM's state allows (migrate needs a region: the API, not a button).
const ACTIONS = { Running: ['reboot', 'suspend'], Suspended: ['resume'], Failed: ['reboot'] };

export function mount(main, [ns, mci]) {
  const ctx = { ns, mci, rows: h('tbody'), net: h('div', { id: 'netlatency' }, 'loading…') };
  const vms = table('vms', `VMs of ${ns}/${mci}`,
    ['VM', 'State', 'Region', 'CSP', 'Last sample', 'CPU (1 h)', 'Actions'], []);
  vms.querySelector('tbody').replaceWith(ctx.rows);
  replace(main, h('h2', {}, `MCI ${ns}/${mci}`),
    h('p', {}, h('a', { href: '#/overview' }, '← Overview')),
    vms, h('h2', {}, 'Network latency'), ctx.net);
  return ctx;
}

async function act(ctx, action, vm) {
  if (!(await confirmDialog(`${action} VM ${vm} of ${ctx.ns}/${ctx.mci}?`))) return;
  try {
    const a = await post('/api/v1/actions', { action, ns: ctx.ns, mci: ctx.mci, vm });
    window.location.hash = `#/actions/${encodeURIComponent(a.id)}`;
  } catch (err) {
    const box = document.getElementById('error');
    box.textContent = err.message;
    box.hidden = false;
  }
}

// A per-minute row is stamped with its minute's start: its samples are up to 60 s younger.
function sampleAge(t) {
  const min = Math.floor((Date.now() - t) / 60000);
  return `≤ ${min + 1} min`;
}

function lastRow(rows) {
  return rows && rows.length ? rows[rows.length - 1] : null;
}

function row(ctx, v, cpu) {
  const rows = (cpu && cpu.vms && cpu.vms[v.id]) || [];
  const last = lastRow(rows);
  const spec = v.spec || {};
  return h('tr', { 'data-vm': v.id },
    h('th', { scope: 'row' }, h('a', { href: `#/vm/${seg(ctx.ns)}/${seg(ctx.mci)}/${seg(v.id)}`, 'data-focus-key': `vm:${v.id}` }, v.id)),
    h('td', { class: 'state' }, v.status || v.state || ''),
    h('td', { class: 'region' }, spec.region || v.region || ''),
    h('td', { class: 'csp' }, spec.csp || v.csp || ''),
    h('td', { class: 'age' }, last ? sampleAge(Date.parse(last[0])) : '—'),
    h('td', {}, sparkline(rows.map((r) => r[1]), `CPU of ${v.id} over the last hour`)),
    h('td', {}, (ACTIONS[v.status] || []).map((a) => h('button', {
      type: 'button', 'data-action': a, 'data-vm': v.id, 'data-focus-key': `${a}:${v.id}`,
      onclick: () => act(ctx, a, v.id),
    }, a))));
}

async function netlatency(ctx) {
  if (ctx.netDone) return;
  ctx.netDone = true; // asked once per visit: a missing route stays missing
  try {
    const n = await get(`/api/v1/ns/${seg(ctx.ns)}/mci/${seg(ctx.mci)}/netlatency`);
    const cols = n.columns || [];
    replace(ctx.net, table('netlatency-table', 'Network latency', cols,
      (n.values || []).map((r) => h('tr', {}, r.map((c) => h('td', {}, c === null ? '—' : c))))));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) replace(ctx.net, 'not available');
    else throw err;
  }
}

export async function update(ctx) {
  const base = `/api/v1/ns/${seg(ctx.ns)}/mci/${seg(ctx.mci)}`;
  const [m, cpu] = await Promise.all([
    get(`/api/v1/mci/${seg(ctx.ns)}/${seg(ctx.mci)}`),
    getSoft(`${base}/metric/cpu?period=m&stat=avg&duration=1h`, null), // no store: the model still shows
  ]);
  replace(ctx.rows, (m.vm || m.vms || []).map((v) => row(ctx, v, cpu)));
  await netlatency(ctx);
}
