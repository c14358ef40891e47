// Rows of API objects shown as an aligned table, tab-separated lines or JSON.

export type Format = 'table' | 'tsv' | 'json';
export const FORMATS: readonly Format[] = ['table', 'tsv', 'json'];

type Obj = Record<string, unknown>;

/** A column may name a nested field with dots, as `queue.name` in a consumer. */
export function pick(row: unknown, column: string): unknown {
  let v: unknown = row;
  for (const part of column.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Obj)[part];
  }
  return v;
}

/** One cell: lists of words joined by commas (tags), other structures as compact JSON. */
export function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join(',');
  return JSON.stringify(v);
}

/** The rows cut down to the columns, as JSON objects keyed by the column names given. */
export function project(rows: unknown[], columns: string[]): Obj[] {
  return rows.map((r) => Object.fromEntries(columns.map((c) => [c, pick(r, c) ?? null])));
}

export function render(rows: unknown[], columns: string[], format: Format): string {
  if (format === 'json') return JSON.stringify(project(rows, columns), null, 2) + '\n';
  // Tabs or newlines inside a name would break the lines a script splits.
  const clean = (s: string): string => s.replace(/[\t\r\n]/g, ' ');
  const cells = rows.map((r) => columns.map((c) => clean(cell(pick(r, c)))));
  if (format === 'tsv') return cells.map((line) => line.join('\t') + '\n').join('');
  const numeric = columns.map((c) => rows.length > 0 && rows.every((r) => ['number', 'undefined'].includes(typeof pick(r, c))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((line) => line[i].length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd() + '\n';
  return line(columns) + cells.map(line).join('');
}
