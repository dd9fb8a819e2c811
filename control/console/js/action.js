// #/actions/{id}: one action's chain: the decision, the guards, each step, the verification,
// with the audit records the controller wrote about it.
import { get, seg } from './api.js';
import { h, replace, when } from './dom.js';
import { actionState } from './overview.js';

export function mount(main, [id]) {
  const ctx = { id, chain: h('ol', { id: 'action-chain' }), audit: h('tbody') };
  const t = h('table', { id: 'action-audit' },
    h('caption', { class: 'muted' }, 'Audit records'),
    h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Event', 'Detail'].map((x) => h('th', { scope: 'col' }, x)))),
    ctx.audit);
  replace(main, h('h2', {}, `Action ${id}`), h('p', {}, h('a', { href: '#/actions' }, '← Actions')),
    ctx.chain, h('h2', {}, 'Audit records'), t);
  return ctx;
}

function detail(r) {
  const skip = new Set(['seq', 'ts', 'event', 'prev', 'hash', 'action', 'policy', 'ns', 'mci', 'kind']);
  return Object.entries(r).filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

export async function update(ctx) {
  const a = await get(`/api/v1/actions/${seg(ctx.id)}`);
  const records = a.audit || [];
  const stepLines = (a.ops || []).map((op, i) => {
    const st = i < a.step ? 'done' : i === a.step && a.phase !== 'done' ? a.phase : i === a.step ? actionState(a) : 'not begun';
    return h('li', { 'data-part': 'step', 'data-step': i }, `step ${i + 1}: ${op} (${st})`);
  });
  replace(ctx.chain,
    h('li', { 'data-part': 'decision' }, `decision: policy ${a.policy} for ${a.kind} ${a.ns}/${a.mci}/${a.target}`,
      a.alarm ? ` on alarm ${a.alarm.rule} (${a.alarm.state}, ${a.alarm.severity})` : ' (manual)',
      a.dry_run ? ', dry run' : '', `, ${when(a.created_ms)}`),
    h('li', { 'data-part': 'guards' }, `guards: ${a.guards || (a.phase === 'approval' ? 'waiting for approval' : a.phase === 'waiting' ? 'waiting (paused or breaker open)' : 'passed')}`),
    stepLines,
    h('li', { 'data-part': 'verification' }, `verification: ${a.phase === 'verifying' ? 'waiting for the alarm to clear' : a.outcome ? `outcome ${a.outcome}` : 'not yet'}`,
      a.last_error ? `; last error: ${a.last_error}` : ''));
  replace(ctx.audit, records.map((r) => h('tr', { 'data-seq': r.seq },
    h('td', {}, r.seq), h('td', {}, r.ts || ''), h('td', {}, r.event), h('td', {}, detail(r)))));
}
