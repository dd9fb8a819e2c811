// Elements built with textContent and attributes only: nothing from the API is parsed as HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('data-')) el.setAttribute(k, String(v));
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the content of el, keeping the focused element's place when it is kept.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function table(id, caption, headers, rows) {
  return h('table', { id },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows));
}

export function ago(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function when(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

// The value of a filter input, lower case ('' when absent).
export function filterValue(id) {
  const el = document.getElementById(id);
  return el ? el.value.trim().toLowerCase() : '';
}

export function filters(onchange, states) {
  return h('div', { class: 'filters', role: 'search' },
    h('label', { for: 'filter-state' }, 'State'),
    h('select', { id: 'filter-state', onchange },
      h('option', { value: '' }, 'all'), states.map((s) => h('option', { value: s }, s))),
    h('label', { for: 'filter-text' }, 'Text'),
    h('input', { id: 'filter-text', type: 'search', oninput: onchange }));
}
