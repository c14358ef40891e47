import { HttpError, badRequest } from './errors';

type Obj = Record<string, unknown>;
export type Query = Record<string, string | string[] | undefined>;

/** RabbitMQ's page size default and its largest page. */
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 500;

const one = (q: Query, key: string): string | undefined => {
  const v = q[key];
  return Array.isArray(v) ? v[v.length - 1] : v;
};

/** A query's flag: set by `key=true` (the last value, when given more than once). */
export const queryFlag = (q: Query, key: string): boolean => one(q, key) === 'true';

/** Whether a query asks for statistics to be left out (RabbitMQ's disable_stats=true). */
export const statsDisabled = (q: Query): boolean => queryFlag(q, 'disable_stats');

/**
 * Shapes a listing as RabbitMQ's management API does: sorted (by `sort`, a dotted path,
 * default the name), reversed on `sort_reverse=true`, cut to the top-level keys in
 * `columns`; with `page`, also filtered by `name` (a case-insensitive substring, or a
 * regular expression with `use_regex=true`) and answered as one page with its counts.
 * Without `page` RabbitMQ ignores `name`, and so do we.
 */
export function shapeList(items: Obj[], q: Query, defaultSort: string[] = ['vhost', 'name']): unknown {
  const sortKey = one(q, 'sort');
  const sorted = sortBy(items, sortKey === undefined || sortKey === '' ? defaultSort : [sortKey]);
  if (one(q, 'sort_reverse') === 'true') sorted.reverse();
  const pageText = one(q, 'page');
  if (pageText === undefined) return select(sorted, q);
  const sizeText = one(q, 'page_size');
  const page = integer(pageText);
  const size = sizeText === undefined ? DEFAULT_PAGE_SIZE : integer(sizeText);
  if (page < 1 || size < 1 || size > MAX_PAGE_SIZE) {
    throw new HttpError(
      400,
      'invalid_pagination_parameters',
      `Invalid pagination parameters: page number ${page}, page size ${sizeText === undefined ? 'undefined' : size}`,
    );
  }
  const filtered = filterByName(sorted, one(q, 'name'), one(q, 'use_regex') === 'true');
  const pageItems = filtered.slice((page - 1) * size, page * size);
  return {
    filtered_count: filtered.length,
    item_count: pageItems.length,
    items: select(pageItems, q),
    page,
    page_count: Math.max(1, Math.ceil(filtered.length / size)),
    page_size: size,
    total_count: items.length,
  };
}

/** `columns` for a single object (GET /api/overview and the like). */
export function shapeOne(item: Obj, q: Query): Obj {
  return select([item], q)[0];
}

const invalid = (): HttpError => badRequest('Pagination parameters are invalid');

function integer(text: string): number {
  if (!/^-?\d+$/.test(text)) throw invalid();
  return Number(text);
}

function filterByName(items: Obj[], name: string | undefined, regex: boolean): Obj[] {
  if (name === undefined || name === '') return items;
  let test: (s: string) => boolean;
  if (regex) {
    let re: RegExp;
    try {
      re = new RegExp(name, 'i');
    } catch {
      throw invalid();
    }
    test = (s) => re.test(s);
  } else {
    const needle = name.toLowerCase();
    test = (s) => s.toLowerCase().includes(needle);
  }
  return items.filter((i) => typeof i.name === 'string' && test(i.name));
}

/** RabbitMQ keeps whole top-level keys: `message_stats.publish` selects all of message_stats. */
function select(items: Obj[], q: Query): Obj[] {
  const columns = one(q, 'columns');
  if (columns === undefined || columns === '') return items;
  const keys = [
    ...new Set(
      columns
        .split(',')
        .map((c) => c.split('.')[0])
        .filter((k) => k !== ''),
    ),
  ];
  return items.map((item) => {
    const out: Obj = {};
    for (const k of keys) if (k in item) out[k] = item[k];
    return out;
  });
}

function path(item: Obj, dotted: string): unknown {
  let v: unknown = item;
  for (const part of dotted.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Obj)[part];
  }
  return v;
}

/** Numbers before strings, missing values first, as a stable sort over the keys in order. */
function sortBy(items: Obj[], keys: string[]): Obj[] {
  const rank = (v: unknown): number => (v === undefined || v === null ? 0 : typeof v === 'number' || typeof v === 'boolean' ? 1 : 2);
  const compare = (a: unknown, b: unknown): number => {
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return ra - rb;
    if (ra === 1) return Number(a) - Number(b);
    if (ra === 2) {
      const sa = typeof a === 'string' ? a : JSON.stringify(a);
      const sb = typeof b === 'string' ? b : JSON.stringify(b);
      return sa < sb ? -1 : sa > sb ? 1 : 0;
    }
    return 0;
  };
  return [...items].sort((x, y) => {
    for (const k of keys) {
      const c = compare(path(x, k), path(y, k));
      if (c !== 0) return c;
    }
    return 0;
  });
}
