// #/vm/{ns}/{mci}/{vm}: an hour of cpu, mem, disk and net, updating.
import { getSoft, seg } from './api.js';
import { h, replace } from './dom.js';
import { chart } from './svg.js';

const METRICS = [['cpu', '%'], ['mem', '%'], ['disk', '%'], ['net', '']];

export function mount(main, [ns, mci, vm]) {
  const ctx = { ns, mci, vm, charts: h('div', { class: 'charts' }) };
  replace(main, h('h2', {}, `VM ${ns}/${mci}/${vm}`),
    h('p', {}, h('a', { href: `#/mci/${seg(ns)}/${seg(mci)}` }, `← MCI ${ns}/${mci}`)), ctx.charts);
  return ctx;
}

async function series(ctx, metric) {
  const r = await getSoft(`/api/v1/ns/${seg(ctx.ns)}/mci/${seg(ctx.mci)}/vm/${seg(ctx.vm)}/metric/${metric}?period=m&stat=avg&duration=1h`, null);
  return (r && r.values) || [];
}

export async function update(ctx) {
  const all = await Promise.all(METRICS.map(([m]) => series(ctx, m)));
  replace(ctx.charts, METRICS.map(([m, unit], i) => h('figure', {},
    h('figcaption', {}, m), chart(m, all[i], unit))));
}
