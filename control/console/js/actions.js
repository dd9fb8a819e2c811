// #/actions: the actions the controller keeps, filtered by state and text.
import { get } from './api.js';
import { h, replace, table, when, filters, filterValue } from './dom.js';
import { actionState } from './overview.js';

export function mount(main) {
  const ctx = { rows: h('tbody'), data: [] };
  const t = table('actions', 'Actions', ['Action', 'Policy', 'Target', 'Steps', 'State', 'Created'], []);
  t.querySelector('tbody').replaceWith(ctx.rows);
  replace(main, h('h2', {}, 'Actions'), filters(() => render(ctx),
    ['approval', 'waiting', 'running', 'verifying', 'healed', 'exhausted', 'cancelled', 'failed', 'rolled_back']), t);
  return ctx;
}

function render(ctx) {
  const st = filterValue('filter-state'), text = filterValue('filter-text');
  replace(ctx.rows, ctx.data
    .filter((a) => (!st || actionState(a) === st) &&
      (!text || `${a.id} ${a.policy} ${a.ns}/${a.mci}/${a.target} ${(a.ops || []).join(' ')}`.toLowerCase().includes(text)))
    .map((a) => h('tr', { 'data-action': a.id, 'data-state': actionState(a) },
      h('td', {}, h('a', { href: `#/actions/${encodeURIComponent(a.id)}`, 'data-focus-key': `act:${a.id}` }, a.id)),
      h('td', {}, a.policy), h('td', {}, `${a.ns}/${a.mci}/${a.target}`),
      h('td', {}, (a.ops || []).join(' → ')),
      h('td', { class: `state-${actionState(a)}` }, actionState(a)), h('td', {}, when(a.created_ms)))));
}

export async function update(ctx) {
  const o = await get('/api/v1/actions?limit=500');
  ctx.data = o.actions;
  render(ctx);
}
