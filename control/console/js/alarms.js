// #/alarms: every alarm series the controller heard of, filtered by state and text.
import { get } from './api.js';
import { h, replace, table, ago, filters, filterValue } from './dom.js';

export function mount(main) {
  const ctx = { rows: h('tbody'), data: [] };
  const t = table('alarms', 'Alarms', ['Rule', 'Target', 'State', 'Severity', 'Since'], []);
  t.querySelector('tbody').replaceWith(ctx.rows);
  replace(main, h('h2', {}, 'Alarms'),
    filters(() => render(ctx), ['firing', 'pending', 'nodata', 'resolved', 'inactive']), t);
  return ctx;
}

function render(ctx) {
  const st = filterValue('filter-state'), text = filterValue('filter-text');
  replace(ctx.rows, ctx.data
    .filter((a) => (!st || a.state === st) &&
      (!text || `${a.rule} ${a.vm} ${a.severity}`.toLowerCase().includes(text)))
    .map((a) => h('tr', { 'data-rule': a.rule, 'data-vm': a.vm, 'data-state': a.state },
      h('td', {}, a.rule), h('td', {}, a.vm), h('td', { class: `state-${a.state}` }, a.state),
      h('td', {}, a.severity), h('td', {}, ago(a.since_ms)))));
}

export async function update(ctx) {
  const o = await get('/api/v1/overview?alarms=all');
  ctx.data = o.alarms || o.alarms_firing;
  render(ctx);
}
