// #/mci/{ns}/{mci}: its VMs with state, place, last sample age and an hour of CPU; the
// manual actions the API takes, each confirmed first; the MCI's network latency if known.
import { get, post, seg, ApiError } from './api.js';
import { h, replace, table, ago } from './dom.js';
import { sparkline } from './svg.js';
import { confirmDialog } from './confirm.js';

const ACTIONS = ['reboot', 'suspend', 'resume', 'migrate'];

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
    h('td', { class: 'age' }, last ? ago(Date.parse(last[0])) : '—'),
    h('td', {}, sparkline(rows.map((r) => r[1]), `CPU of ${v.id} over the last hour`)),
    h('td', {}, ACTIONS.map((a) => h('button', {
      type: 'button', 'data-action': a, 'data-vm': v.id, 'data-focus-key': `${a}:${v.id}`,
      onclick: () => act(ctx, a, v.id),
    }, a))));
}

async function netlatency(ctx) {
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
    get(`${base}/metric/cpu?period=m&stat=avg&duration=1h`).catch((err) => {
      if (err instanceof ApiError && err.status === 401) throw err;
      return null; // no store: the table still shows the model
    }),
  ]);
  replace(ctx.rows, (m.vm || m.vms || []).map((v) => row(ctx, v, cpu)));
  await netlatency(ctx);
}
