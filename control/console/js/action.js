// #/actions/{id}: one action's chain - the decision, the guards, each step, the verification -
// read from the audit records the controller wrote about it (GET /api/v1/actions/{id}).
import { get, seg } from './api.js';
import { h, replace, when } from './dom.js';
import { actionState } from './overview.js';

const SKIP = new Set(['seq', 'time', 'event', 'prev', 'hash', 'action', 'policy', 'ns', 'mci',
  'kind', 'target', 'dry_run']);

export function mount(main, [id]) {
  const ctx = { id, summary: h('p'), chain: h('ol', { id: 'action-chain' }), audit: h('tbody') };
  const t = h('table', { id: 'action-audit' },
    h('caption', { class: 'visually-hidden' }, 'Audit records'),
    h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Event', 'Detail'].map((x) => h('th', { scope: 'col' }, x)))),
    ctx.audit);
  replace(main, h('h2', {}, `Action ${id}`), h('p', {}, h('a', { href: '#/actions' }, '← Actions')),
    ctx.summary, h('h3', {}, 'Chain'), ctx.chain, h('h3', {}, 'Audit records'), t);
  return ctx;
}

function detail(r) {
  return Object.entries(r).filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

function decisionItem(a, d) {
  const why = a.alarm && a.alarm.rule !== 'manual'
    ? `alarm ${a.alarm.rule} (${a.alarm.state}, ${a.alarm.severity || 'no severity'})` : 'a manual request';
  return h('li', { 'data-part': 'decision' },
    `Decision: policy ${a.policy} on ${why} for ${a.kind} ${a.ns}/${a.mci}/${a.target}: `,
    h('strong', {}, d ? d.verdict : 'not recorded'), a.dry_run ? ' (dry run)' : '');
}

function guardsItem(a, d) {
  let text = 'passed';
  if (d && d.guard) text = `blocked by ${d.guard}${d.why ? `: ${d.why}` : ''}`;
  else if (a.phase === 'approval') text = 'waiting for approval';
  else if (a.phase === 'waiting') text = 'waiting (paused or the breaker is open)';
  return h('li', { 'data-part': 'guards' }, `Guards: ${text}`);
}

function stepItems(a, records) {
  return (a.ops || []).map((op, i) => {
    const rs = records.filter((r) => r.event === 'step' && r.step === i);
    const end = rs.find((r) => r.phase === 'end');
    let st = 'not begun';
    if (end) st = end.ok ? 'done' : `failed${end.error ? `: ${end.error}` : ''}`;
    else if (rs.length) st = 'running';
    return h('li', { 'data-part': 'step', 'data-step': i }, `Step ${i + 1}: ${op}, ${st}`);
  });
}

function verifyItem(a, records) {
  const v = records.filter((r) => r.event === 'verify');
  const last = v[v.length - 1];
  let text = 'not yet';
  if (a.phase === 'verifying') text = 'waiting for the alarm to clear and the agent';
  else if (last) text = last.ok ? `step ${last.step + 1} verified` : `step ${last.step + 1} not verified: ${last.why || ''}`;
  else if (a.phase === 'done') text = 'none';
  return h('li', { 'data-part': 'verification' }, `Verification: ${text}`,
    a.outcome ? `; outcome ${a.outcome}` : '', a.last_error ? `; last error: ${a.last_error}` : '');
}

export async function update(ctx) {
  const a = await get(`/api/v1/actions/${seg(ctx.id)}`);
  const records = a.audit || [];
  const d = records.find((r) => r.event === 'decision');
  replace(ctx.summary, `State: ${actionState(a)}; created ${when(a.created_ms)}`);
  ctx.summary.dataset.state = actionState(a);
  replace(ctx.chain, decisionItem(a, d), guardsItem(a, d), stepItems(a, records), verifyItem(a, records));
  replace(ctx.audit, records.map((r) => h('tr', { 'data-seq': r.seq },
    h('td', {}, r.seq), h('td', {}, r.time || ''), h('td', {}, r.event), h('td', {}, detail(r)))));
}
