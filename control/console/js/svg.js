// Sparklines and charts as inline SVG: a polyline over the values, nothing more.
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function points(values, w, h, pad) {
  const ys = values.filter((v) => typeof v === 'number');
  if (ys.length === 0) return '';
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const step = values.length > 1 ? (w - 2 * pad) / (values.length - 1) : 0;
  return values
    .map((v, i) => (typeof v === 'number'
      ? `${(pad + i * step).toFixed(1)},${(h - pad - ((v - lo) / span) * (h - 2 * pad)).toFixed(1)}`
      : null))
    .filter(Boolean)
    .join(' ');
}

export function sparkline(values, label) {
  const el = s('svg', { class: 'sparkline', viewBox: '0 0 120 24', role: 'img', 'aria-label': label });
  el.append(s('polyline', { points: points(values, 120, 24, 2) }));
  return el;
}

// A chart of [time, value] rows with the last value and the range as text.
export function chart(metric, rows, unit) {
  const values = rows.map((r) => r[1]);
  const nums = values.filter((v) => typeof v === 'number');
  const last = nums.length ? nums[nums.length - 1] : null;
  const el = s('svg', {
    class: 'chart', 'data-metric': metric, viewBox: '0 0 640 160', role: 'img',
    'aria-label': `${metric}: ${last === null ? 'no samples' : `last ${last.toFixed(1)}${unit}`}`,
  });
  el.append(s('line', { x1: 30, y1: 150, x2: 630, y2: 150 }));
  const title = s('text', { x: 30, y: 12 });
  title.textContent = nums.length
    ? `${metric} ${Math.min(...nums).toFixed(1)}–${Math.max(...nums).toFixed(1)}${unit}, last ${last.toFixed(1)}${unit}`
    : `${metric}: no samples in the last hour`;
  el.append(title);
  const line = s('polyline', { points: points(values, 600, 140, 4), transform: 'translate(30,14)' });
  el.append(line);
  return el;
}
