// Rolling time-series charts (uPlot), fed one sample per refresh and kept for a few minutes
// in the page: they need nothing from the server beyond the current rates and counts.
import uPlot from '/ui/vendor/uPlot.esm.js';
import { h, fill } from './dom.js';
import { short } from './format.js';

const KEEP_SECONDS = 10 * 60;

const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const clock = (t) => clockFmt.format(new Date(t * 1000));

function xRange(u, min, max) {
  const xs = u.data?.[0] ?? [];
  const newest = xs.length > 0 ? xs[xs.length - 1] : Date.now() / 1000;
  // uPlot widens a lone point to a whole day (every label then reads 00:00:00): the right
  // edge stays at the newest point.
  if (typeof max !== 'number' || !Number.isFinite(max) || max > newest) max = newest;
  return [typeof min === 'number' && Number.isFinite(min) ? Math.min(min, max - 120) : max - 120, max];
}

/** series: [{label, color}]; fmt formats the current values in the legend. */
export function chart(title, series, { fmt = short, height = 190 } = {}) {
  const data = [[], ...series.map(() => [])];
  const legend = h('div', { class: 'legend' });
  const plotEl = h('div', { class: 'plot', style: `height:${height}px` });
  const el = h('div', { class: 'chart' }, h('div', { class: 'chart-head' }, h('h3', null, title), legend), plotEl);
  let plot = null;

  const make = (width) => {
    plot = new uPlot(
      {
        width,
        height,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        padding: [8, 24, 0, 0],
        // At least two minutes wide, so the first samples sit at the right edge of a real time axis.
        scales: { x: { time: true, range: xRange }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
        axes: [
          {
            stroke: '#6b7280',
            grid: { stroke: '#eef0f3', width: 1 },
            ticks: { show: false },
            font: '11px system-ui, sans-serif',
            space: 70,
            size: 30,
            values: (_u, splits) => splits.map(clock),
          },
          {
            stroke: '#6b7280',
            grid: { stroke: '#eef0f3', width: 1 },
            ticks: { show: false },
            size: 46,
            font: '11px system-ui, sans-serif',
            values: (_u, splits) => splits.map(short),
          },
        ],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            fill: i === 0 ? `${s.color}18` : undefined,
            points: { show: false },
            spanGaps: false,
          })),
        ],
      },
      data,
      plotEl,
    );
  };

  const ro = new ResizeObserver(() => {
    const width = plotEl.clientWidth;
    if (width <= 0) return;
    if (plot === null) make(width);
    else plot.setSize({ width, height });
  });
  ro.observe(plotEl);

  const drawLegend = (values) => {
    fill(
      legend,
      series.map((s, i) =>
        h(
          'span',
          { class: 'legend-item' },
          h('i', { style: `background:${s.color}` }),
          s.label,
          ' ',
          h('b', null, values ? fmt(values[i]) : '—'),
        ),
      ),
    );
  };
  drawLegend(null);

  return {
    el,
    /** values: one number (or undefined: a gap) per series. */
    push(values) {
      const now = Date.now() / 1000;
      data[0].push(now);
      series.forEach((_, i) => data[i + 1].push(typeof values[i] === 'number' && Number.isFinite(values[i]) ? values[i] : null));
      while (data[0].length > 0 && data[0][0] < now - KEEP_SECONDS) for (const col of data) col.shift();
      drawLegend(values);
      if (plot !== null) plot.setData(data);
    },
    /** Earlier points, [t (s), v1, v2, …] oldest first, drawn before the live ones. */
    seed(points) {
      if (points.length === 0) return;
      const first = data[0].length > 0 ? data[0][0] : Infinity;
      const older = points.filter((p) => p[0] < first);
      data.forEach((col, i) => col.unshift(...older.map((p) => (typeof p[i] === 'number' && Number.isFinite(p[i]) ? p[i] : null))));
      if (plot !== null) plot.setData(data);
    },
    destroy() {
      ro.disconnect();
      if (plot !== null) plot.destroy();
    },
  };
}
