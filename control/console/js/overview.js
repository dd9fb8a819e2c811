// #/overview: every MCI, the alarms firing, the breaker and the last actions, from one call.
import { get } from './api.js';
import { h, replace, table, ago, when } from './dom.js';

export function mount(main) {
  const ctx = {
    breaker: h('span', { id: 'breaker', 'data-state': 'closed' }, 'breaker closed'),
    mcis: h('section', { id: 'mcis', 'aria-label': 'MCIs' }),
    alarms: h('tbody'),
    actions: h('tbody'),
  };
  const alarmsTable = table('alarms-firing', 'Alarms firing', ['Rule', 'Target', 'Severity', 'Since'], []);
  alarmsTable.querySelector('tbody').replaceWith(ctx.alarms);
  const actionsTable = table('last-actions', 'Last 20 actions',
    ['Action', 'Policy', 'Target', 'State', 'Created'], []);
  actionsTable.querySelector('tbody').replaceWith(ctx.actions);
  replace(main,
    h('h2', {}, 'Storm breaker'), h('p', {}, ctx.breaker),
    h('h2', {}, 'MCIs'), ctx.mcis,
    h('h2', {}, 'Alarms firing'), alarmsTable,
    h('h2', {}, 'Last actions'), actionsTable);
  return ctx;
}

export const actionState = (a) => a.state || a.outcome || a.phase;

function card(m) {
  const states = Object.entries(m.vm_states || {}).map(([s, n]) => `${s}: ${n}`).join(', ');
  const key = `${m.ns}/${m.mci}`;
  return h('article', { class: m.breaker_open ? 'mci breaker-open' : 'mci', 'data-mci': key },
    h('a', { href: `#/mci/${encodeURIComponent(m.ns)}/${encodeURIComponent(m.mci)}`, 'data-focus-key': `mci:${key}` },
      h('h3', {}, key),
      h('div', { class: 'mci-status' }, m.status),
      h('div', { class: 'vm-states' }, states || 'no VMs'),
      h('div', { class: 'muted' },
        `agents: ${m.agents.online} online, ${m.agents.offline} offline, ${m.agents.unknown} unknown`)));
}

export async function update(ctx) {
  const o = await get('/api/v1/overview');
  const state = o.breaker.state;
  ctx.breaker.dataset.state = state;
  ctx.breaker.textContent = `breaker ${state}${o.breaker.paused ? ', actions paused' : ''}`;
  replace(ctx.mcis, o.mcis.length ? o.mcis.map(card) : h('p', { class: 'muted' }, 'No MCI in the federation\'s model.'));
  replace(ctx.alarms, o.alarms_firing.map((a) => h('tr', { 'data-rule': a.rule, 'data-vm': a.vm },
    h('td', {}, a.rule), h('td', {}, a.vm), h('td', {}, a.severity), h('td', {}, ago(a.since_ms)))));
  replace(ctx.actions, o.actions.map((a) => h('tr', { 'data-action': a.id, 'data-state': actionState(a) },
    h('td', {}, h('a', { href: `#/actions/${encodeURIComponent(a.id)}`, 'data-focus-key': `act:${a.id}` }, a.id)),
    h('td', {}, a.policy), h('td', {}, `${a.ns}/${a.mci}/${a.target}`),
    h('td', { class: `state-${actionState(a)}` }, actionState(a)), h('td', {}, when(a.created_ms)))));
}
