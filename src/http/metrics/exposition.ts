/**
 * Prometheus's text exposition format (version 0.0.4): HELP and TYPE lines, then samples.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export type MetricType = 'counter' | 'gauge' | 'untyped';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const LABEL_SPECIALS = /[\\"\n]/;

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  // Nearly every name needs nothing: test first so that the common case copies nothing.
  if (!LABEL_SPECIALS.test(v)) return v;
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : '\\' + c));
}

/** `name="value"`, the value escaped. */
export const label = (name: string, value: string): string => `${name}="${escapeLabelValue(value)}"`;

/** HELP text escapes backslash and line feed (not the double quote). */
const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Builds one response. A scrape of many objects writes hundreds of thousands of lines:
 * each family's text is built as one string and turned into bytes when the family ends,
 * which keeps the garbage collector's share small (a single string for the whole response
 * took twice as long). A family's header is written only if it gets a sample.
 */
export class Exposition {
  private readonly parts: Buffer[] = [];
  private header = '';
  private body = '';

  /** Starts a family; its samples follow. */
  family(name: string, type: MetricType, help: string): void {
    this.flush();
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
  }

  /** `labels` is the inside of the braces, already escaped (see `label`), or ''. */
  sample(name: string, labels: string, value: number): void {
    this.body += labels === '' ? name + ' ' + formatValue(value) + '\n' : name + '{' + labels + '} ' + formatValue(value) + '\n';
  }

  private flush(): void {
    if (this.body !== '') this.parts.push(Buffer.from(this.header + this.body, 'utf8'));
    this.body = '';
  }

  toBuffer(): Buffer {
    this.flush();
    return Buffer.concat(this.parts);
  }
}
