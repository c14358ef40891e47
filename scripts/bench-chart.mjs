#!/usr/bin/env node
// Draws docs/bench-chart.svg (the README's chart) from bench/results.json, which
// npm run bench:compare writes next to bench/RESULTS.md. One bar per scenario: how many times
// better Leveret did than RabbitMQ on that scenario's target metric (more msg/s, or less memory,
// latency or restart time), on a log scale. Plain SVG, no dependency.
//
//   node scripts/bench-chart.mjs [--in bench/results.json] [--out docs/bench-chart.svg]   (npm run docs:chart)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { in: { type: 'string' }, out: { type: 'string' } } });
const input = resolve(values.in ?? join(ROOT, 'bench', 'results.json'));
const output = resolve(values.out ?? join(ROOT, 'docs', 'bench-chart.svg'));
const results = JSON.parse(readFileSync(input, 'utf8'));

// Short captions for compare.ts's scenario ids; another id falls back to its (cut) title.
const CAPTION = {
  a: 'throughput, 16 B transient',
  b: 'throughput, 1 KB transient',
  c: 'throughput, 1 KB persistent + confirms',
  d: 'fanout to 50 queues',
  e: 'topic exchange, 10,000 bindings',
  f: 'memory per idle connection',
  g: 'peak memory, 1M-message backlog',
  h: 'p99 latency at 5,000 msg/s',
  i: 'restart after kill -9, 1M messages',
};
const BETTER = { 'msg/s': 'more msg/s', kB: 'less memory', MB: 'less memory', ms: 'lower latency', s: 'faster' };

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (n) => (n >= 1000 ? Math.round(n).toLocaleString('en-US') : String(n));
const times = (x) => (x >= 10 ? `${Math.round(x)}×` : `${x.toFixed(1)}×`);

const rows = results.summary
  .filter((r) => r.leveret > 0 && r.rabbitmq > 0)
  .map((r) => {
    const advantage = r.higherIsBetter ? r.leveret / r.rabbitmq : r.rabbitmq / r.leveret;
    const caption = `(${r.scenario}) ${CAPTION[r.scenario] ?? (r.title.length > 38 ? r.title.slice(0, 37) + '…' : r.title)}`;
    const figures = `(${num(r.leveret)} vs ${num(r.rabbitmq)} ${r.unit})`;
    // A scenario Leveret loses is drawn as a stub and says so: the chart must not flatter.
    const detail =
      advantage >= 1
        ? `${times(advantage)} ${BETTER[r.unit] ?? 'better'}  ${figures}`
        : `RabbitMQ ${times(1 / advantage)} better  ${figures}`;
    return { caption, detail, advantage };
  });

const W = 900;
const ROW = 30;
const TOP = 62;
const LEFT = 300; // where the bars start (1×)
const SPAN = 300; // pixels for the whole log axis
const MAX = Math.max(50, ...rows.map((r) => r.advantage * 1.1));
const x = (v) => LEFT + (Math.log(Math.max(v, 1)) / Math.log(MAX)) * SPAN;
const H = TOP + rows.length * ROW + 44;

const svg = [];
svg.push(
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, 'DejaVu Sans', sans-serif" font-size="13">`,
  `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
  `<text x="16" y="26" font-size="16" font-weight="bold" fill="#1b1f23">Leveret vs RabbitMQ ${esc(results.rabbitmq.split(' ')[1] ?? '')}: how many times better, per scenario</text>`,
  `<text x="16" y="46" fill="#57606a">${esc(`${results.machine.split(', Linux')[0]}; ${results.repeat > 1 ? `medians of ${results.repeat} runs each` : 'one run each'} (bench/RESULTS.md, ${results.generated.slice(0, 10)})`)}</text>`,
);
// Axis: grid lines at 1, 2, 5, 10, 20, 50 ... up to MAX.
const axisY = TOP + rows.length * ROW;
for (const t of [1, 2, 5, 10, 20, 50, 100, 200, 500].filter((t) => t <= MAX)) {
  svg.push(
    `<line x1="${x(t)}" y1="${TOP - 6}" x2="${x(t)}" y2="${axisY}" stroke="${t === 1 ? '#57606a' : '#d0d7de'}" stroke-width="1"/>`,
    `<text x="${x(t)}" y="${axisY + 16}" text-anchor="middle" fill="#57606a">${t}×</text>`,
  );
}
svg.push(`<text x="${LEFT}" y="${axisY + 34}" fill="#57606a">1× = same as RabbitMQ (log scale)</text>`);
rows.forEach((r, i) => {
  const y = TOP + i * ROW;
  const end = x(r.advantage);
  svg.push(
    `<text x="${LEFT - 10}" y="${y + 19}" text-anchor="end" fill="#1b1f23">${esc(r.caption)}</text>`,
    `<rect x="${LEFT}" y="${y + 6}" width="${Math.max(end - LEFT, 2).toFixed(1)}" height="${ROW - 12}" rx="3" fill="${r.advantage >= 1 ? '#2f8f5b' : '#cf222e'}"/>`,
    // A white outline keeps the figures legible where they cross grid lines.
    `<text x="${(end + 8).toFixed(1)}" y="${y + 19}" fill="#1b1f23" stroke="#ffffff" stroke-width="4" paint-order="stroke">${esc(r.detail)}</text>`,
  );
});
svg.push('</svg>');

writeFileSync(output, svg.join('\n') + '\n');
process.stdout.write(`bench-chart: wrote ${output} (${rows.length} scenarios from ${input})\n`);
