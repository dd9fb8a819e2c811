// The console's one page: hash routes, a poll every ?poll= ms (default 2000) re-rendering the
// current view in place. document.body.dataset.ready names the route once it first rendered,
// dataset.polls counts the polls since; window.dsfLoadedAt stays what it was at load (no
// reload ever happens).
import { ApiError, warnings } from './api.js';
import * as overview from './overview.js';
import * as mci from './mci.js';
import * as vm from './vm.js';
import * as alarms from './alarms.js';
import * as actions from './actions.js';
import * as action from './action.js';

window.dsfLoadedAt = window.dsfLoadedAt || Date.now();

const pollMs = (() => {
  const v = Number(new URLSearchParams(window.location.search).get('poll'));
  return Number.isFinite(v) && v >= 100 ? v : 2000;
})();

const routes = [
  [/^#\/overview$/, 'overview', overview],
  [/^#\/mci\/([^/]+)\/([^/]+)$/, 'mci', mci],
  [/^#\/vm\/([^/]+)\/([^/]+)\/([^/]+)$/, 'vm', vm],
  [/^#\/alarms$/, 'alarms', alarms],
  [/^#\/actions$/, 'actions', actions],
  [/^#\/actions\/([^/]+)$/, 'action', action],
];

let current = null; // {name, view, ctx, timer, gen}
let generation = 0;

function showError(err) {
  const box = document.getElementById('error');
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

// The focused control is found again after a re-render by its data-focus-key.
function keepFocus(fn) {
  const key = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focusKey : undefined;
  return fn().finally(() => {
    if (!key) return;
    const el = document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (el && el !== document.activeElement) el.focus();
  });
}

async function update(gen) {
  if (!current || current.gen !== gen) return;
  let first = false;
  try {
    warnings.length = 0;
    await keepFocus(() => current.view.update(current.ctx));
    if (current.gen !== gen) return;
    showError(warnings.length ? warnings.join('; ') : null);
    if (!current.rendered) {
      current.rendered = first = true;
      document.body.dataset.ready = current.name;
    }
  } catch (err) {
    if (current.gen === gen && !(err instanceof ApiError && err.status === 401)) showError(err);
  } finally {
    if (current && current.gen === gen) {
      // Every poll after the first render counts, a failed one too (its error is shown).
      if (current.rendered && !first) {
        document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
      }
      current.timer = setTimeout(() => update(gen), pollMs);
    }
  }
}

function route() {
  const hash = window.location.hash || '#/overview';
  let match = null;
  for (const [re, name, view] of routes) {
    const m = hash.match(re);
    if (m) {
      match = { name, view, params: m.slice(1).map(decodeURIComponent) };
      break;
    }
  }
  if (!match) {
    window.location.hash = '#/overview';
    return;
  }
  if (current) clearTimeout(current.timer);
  delete document.body.dataset.ready;
  document.body.dataset.polls = '0';
  const main = document.getElementById('main');
  const gen = ++generation;
  current = { name: match.name, view: match.view, gen, timer: null, rendered: false };
  current.ctx = match.view.mount(main, match.params);
  for (const a of document.querySelectorAll('nav#menu a')) {
    const on = hash.startsWith(a.getAttribute('href'));
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  showError(null);
  update(gen);
}

// Arrow keys move along the menu (besides Tab and the accesskeys).
function menuKeys(e) {
  if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
  const links = [...document.querySelectorAll('nav#menu a')];
  const i = links.indexOf(document.activeElement);
  if (i < 0) return;
  e.preventDefault();
  links[(i + (e.key === 'ArrowRight' ? 1 : links.length - 1)) % links.length].focus();
}

document.getElementById('menu').addEventListener('keydown', menuKeys);
window.addEventListener('hashchange', route);
route();
