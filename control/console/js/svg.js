// Sparklines and charts as inline SVG: a polyline over the values, nothing more.
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// "x,y x,y ..." of the numbers among values, scaled into w x h less pad on each side.
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

// The last point as a dot: one sample (a VM's first minute) draws no line.
function lastDot(pts, r, transform) {
  const last = pts.split(' ').pop();
  if (!last) return null;
  const [cx, cy] = last.split(',');
  return s('circle', { cx, cy, r, transform: transform || '' });
}

export function sparkline(values, label) {
  const el = s('svg', { class: 'sparkline', viewBox: '0 0 120 24', role: 'img', 'aria-label': label });
  const pts = points(values, 120, 24, 2);
  el.append(s('polyline', { points: pts }));
  const dot = lastDot(pts, 2);
  if (dot) el.append(dot);
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
  const title = s('text', { x: 30, y: 16 });
  title.textContent = nums.length
    ? `${metric} ${Math.min(...nums).toFixed(1)}–${Math.max(...nums).toFixed(1)}${unit}, last ${last.toFixed(1)}${unit}`
    : `${metric}: no samples in the last hour`;
  el.append(title);
  const pts = points(values, 600, 130, 4);
  el.append(s('polyline', { points: pts, transform: 'translate(30,20)' }));
  const dot = lastDot(pts, 4, 'translate(30,20)');
  if (dot) el.append(dot);
  return el;
}
