import { describe, it, expect } from 'vitest';
import {
  bindingArgumentsError,
  createExchange,
  DirectExchange,
  EXCHANGE_TYPES,
  FanoutExchange,
  HeadersExchange,
  TopicExchange,
  type Binding,
  type BindingDestination,
  type Exchange,
} from '../src/broker/exchanges/index';
import { Decimal, type FieldTable } from '../src/protocol/types';
import { RouteTargets } from '../src/broker/exchanges/route-targets';

// Fresh objects on purpose: the broker may hand in a new { kind, name } on every bind.
const q = (name: string): BindingDestination => ({ kind: 'queue', name });
const e = (name: string): BindingDestination => ({ kind: 'exchange', name });

function binding(dest: BindingDestination, routingKey = '', args: FieldTable = {}): Binding {
  return { source: 'src', destination: dest, routingKey, args };
}

/** Destination ids reached, sorted, e.g. ['queue:q1', 'exchange:x']. */
/** Destination ids reached, each once, sorted (an exchange may name one more than once; the vhost keeps it once). */
function route(x: Exchange, routingKey: string, headers?: FieldTable): string[] {
  const out = new RouteTargets();
  x.route(routingKey, headers, out);
  return [...new Set(out.toArray())].map((d) => `${d.kind}:${d.name}`).sort();
}

function routeCount(x: Exchange, routingKey: string, headers?: FieldTable): number {
  const out = new RouteTargets();
  x.route(routingKey, headers, out);
  return new Set(out.toArray()).size;
}

const topic = () => new TopicExchange('t', false, false, false, {});
const headersX = () => new HeadersExchange('h', false, false, false, {});

describe('createExchange', () => {
  it('creates each known type with its properties', () => {
    for (const type of EXCHANGE_TYPES) {
      const x = createExchange(type, 'x1', true, false, true, { alternate: 'y' });
      expect(x).toBeDefined();
      expect(x!.type).toBe(type);
      expect(x!.name).toBe('x1');
      expect(x!.durable).toBe(true);
      expect(x!.autoDelete).toBe(false);
      expect(x!.internal).toBe(true);
      expect(x!.args).toEqual({ alternate: 'y' });
      expect(x!.bindingCount).toBe(0);
    }
    expect(EXCHANGE_TYPES).toEqual(['direct', 'fanout', 'topic', 'headers']);
    expect(createExchange('direct', 'd', false, false, false, {})).toBeInstanceOf(DirectExchange);
    expect(createExchange('fanout', 'f', false, false, false, {})).toBeInstanceOf(FanoutExchange);
    expect(createExchange('topic', 't', false, false, false, {})).toBeInstanceOf(TopicExchange);
    expect(createExchange('headers', 'h', false, false, false, {})).toBeInstanceOf(HeadersExchange);
  });

  it('returns undefined for an unknown type', () => {
    expect(createExchange('x-consistent-hash', 'x', false, false, false, {})).toBeUndefined();
    expect(createExchange('Direct', 'x', false, false, false, {})).toBeUndefined();
    expect(createExchange('', 'x', false, false, false, {})).toBeUndefined();
  });
});

// Binding identity is shared by all types; run the same rules against each.
describe.each(EXCHANGE_TYPES)('binding identity (%s)', (type) => {
  const make = () => createExchange(type, 'x', false, false, false, {})!;

  it('refuses an exact duplicate', () => {
    const x = make();
    expect(x.bind(binding(q('q1'), 'k', { a: 1 }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { a: 1 }))).toBe(false);
    expect(x.bindingCount).toBe(1);
  });

  it('compares top-level args regardless of key order (RabbitMQ sorts them; checked against 3.10)', () => {
    const x = make();
    expect(x.bind(binding(q('q1'), 'k', { a: 1, b: 'two' }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { b: 'two', a: 1 }))).toBe(false);
    expect(x.unbind(binding(q('q1'), 'k', { b: 'two', a: 1 }))).toBe(true);
    expect(x.bindingCount).toBe(0);
  });

  it('compares args deeply, by value', () => {
    const x = make();
    const args = (): FieldTable => ({
      buf: Buffer.from('ab'),
      when: new Date(5000),
      dec: new Decimal(2, 314),
      list: [1, 'two', [3]],
      nested: { c: { d: true } },
      big: 2n ** 60n,
      nothing: null,
    });
    expect(x.bind(binding(q('q1'), 'k', args()))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', args()))).toBe(false);
    expect(x.bind(binding(q('q1'), 'k', { ...args(), buf: Buffer.from('ac') }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { ...args(), dec: new Decimal(1, 314) }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { ...args(), list: [1, 'two', [4]] }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { ...args(), nothing: false }))).toBe(true);
    expect(x.bindingCount).toBe(5);
  });

  it('treats an undefined arg as absent', () => {
    const x = make();
    expect(x.bind(binding(q('q1'), 'k', {}))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { a: undefined }))).toBe(false);
  });

  it('keeps same destination + key with different args as separate bindings', () => {
    const x = make();
    expect(x.bind(binding(q('q1'), 'k', { v: 1 }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k', { v: 2 }))).toBe(true);
    expect(x.bind(binding(q('q1'), 'k'))).toBe(true);
    expect(x.bindingCount).toBe(3);
  });

  it('distinguishes destination kind, name and routing key', () => {
    const x = make();
    expect(x.bind(binding(q('same'), 'k'))).toBe(true);
    expect(x.bind(binding(e('same'), 'k'))).toBe(true);
    expect(x.bind(binding(q('other'), 'k'))).toBe(true);
    expect(x.bind(binding(q('same'), 'k2'))).toBe(true);
    expect(x.bindingCount).toBe(4);
  });

  it('unbind returns false when there is no identical binding', () => {
    const x = make();
    x.bind(binding(q('q1'), 'k', { v: 1 }));
    expect(x.unbind(binding(q('q1'), 'k', { v: 2 }))).toBe(false);
    expect(x.unbind(binding(q('q1'), 'other', { v: 1 }))).toBe(false);
    expect(x.unbind(binding(e('q1'), 'k', { v: 1 }))).toBe(false);
    expect(x.unbind(binding(q('q2'), 'k', { v: 1 }))).toBe(false);
    expect(x.unbind(binding(q('q1'), 'k', { v: 1 }))).toBe(true);
    expect(x.unbind(binding(q('q1'), 'k', { v: 1 }))).toBe(false);
    expect(x.bindingCount).toBe(0);
  });

  it('lists bindings and removes all bindings of a destination', () => {
    const x = make();
    x.bind(binding(q('q1'), 'a'));
    x.bind(binding(q('q1'), 'b'));
    x.bind(binding(q('q1'), 'b', { v: 1 }));
    x.bind(binding(q('q2'), 'a'));
    x.bind(binding(e('q1'), 'a'));
    expect(x.bindingCount).toBe(5);
    expect([...x.bindings()].map((b) => `${b.destination.kind}:${b.destination.name}/${b.routingKey}`).sort()).toEqual([
      'exchange:q1/a',
      'queue:q1/a',
      'queue:q1/b',
      'queue:q1/b',
      'queue:q2/a',
    ]);
    x.unbindDestination(q('q1'));
    expect(x.bindingCount).toBe(2);
    expect([...x.bindings()].map((b) => `${b.destination.kind}:${b.destination.name}`).sort()).toEqual(['exchange:q1', 'queue:q2']);
    x.unbindDestination(q('nobody')); // no-op
    expect(x.bindingCount).toBe(2);
    // Everything still routable is exactly what is left.
    if (type !== 'headers') expect(route(x, 'a')).toEqual(['exchange:q1', 'queue:q2']);
    // And the destination can be bound again.
    expect(x.bind(binding(q('q1'), 'a'))).toBe(true);
  });

  it('adds one object per destination to out, whatever objects the bindings carried', () => {
    const x = make();
    x.bind(binding(q('q1'), 'k'));
    x.bind(binding(q('q1'), 'k', { v: 1 }));
    x.bind(binding(q('q1'), '#'));
    const out = new RouteTargets();
    x.route('k', {}, out);
    expect(new Set(out.toArray()).size).toBe(1);
    // bindings() reports the canonical destination too.
    const dests = new Set([...x.bindings()].map((b) => b.destination));
    expect(dests.size).toBe(1);
  });
});

describe('direct exchange', () => {
  const direct = () => new DirectExchange('d', false, false, false, {});

  it('routes on exact routing key only', () => {
    const x = direct();
    x.bind(binding(q('q1'), 'a.b'));
    x.bind(binding(q('q2'), 'a.*'));
    x.bind(binding(q('q3'), ''));
    expect(route(x, 'a.b')).toEqual(['queue:q1']);
    expect(route(x, 'a.*')).toEqual(['queue:q2']);
    expect(route(x, 'a.c')).toEqual([]);
    expect(route(x, 'A.B')).toEqual([]);
    expect(route(x, '')).toEqual(['queue:q3']);
    expect(route(x, 'a.b ')).toEqual([]);
  });

  it('routes to several destinations on one key, queues and exchanges alike', () => {
    const x = direct();
    x.bind(binding(q('q1'), 'k'));
    x.bind(binding(q('q2'), 'k'));
    x.bind(binding(e('x2'), 'k'));
    expect(route(x, 'k')).toEqual(['exchange:x2', 'queue:q1', 'queue:q2']);
  });

  // Checked against RabbitMQ 3.10: two bindings (same queue, same key, different args)
  // deliver one copy; after unbinding one the queue still gets messages; after both, none.
  it('counts bindings per destination and key', () => {
    const x = direct();
    x.bind(binding(q('q1'), 'k', { v: 1 }));
    x.bind(binding(q('q1'), 'k', { v: 2 }));
    expect(routeCount(x, 'k')).toBe(1);
    x.unbind(binding(q('q1'), 'k', { v: 1 }));
    expect(route(x, 'k')).toEqual(['queue:q1']);
    x.unbind(binding(q('q1'), 'k', { v: 2 }));
    expect(route(x, 'k')).toEqual([]);
  });

  it('appends to out and keeps what is there', () => {
    const x = direct();
    x.bind(binding(q('q1'), 'k'));
    const out = new RouteTargets();
    out.add(e('from-elsewhere'));
    x.route('k', undefined, out);
    x.route('k', undefined, out);
    expect(out.toArray().map((d) => d.name)).toEqual(['from-elsewhere', 'q1', 'q1']);
  });

  it('unbindDestination clears every key of that destination', () => {
    const x = direct();
    x.bind(binding(q('q1'), 'a'));
    x.bind(binding(q('q1'), 'b'));
    x.bind(binding(q('q1'), 'b', { v: 1 }));
    x.bind(binding(q('q2'), 'b'));
    x.unbindDestination(q('q1'));
    expect(route(x, 'a')).toEqual([]);
    expect(route(x, 'b')).toEqual(['queue:q2']);
  });

  it('handles many keys and destinations', () => {
    const x = direct();
    for (let i = 0; i < 5000; i++) x.bind(binding(q(`q${i}`), `key.${i % 100}`));
    expect(x.bindingCount).toBe(5000);
    expect(routeCount(x, 'key.7')).toBe(50);
    for (let i = 0; i < 5000; i += 2) x.unbind(binding(q(`q${i}`), `key.${i % 100}`));
    expect(routeCount(x, 'key.7')).toBe(50);
    expect(routeCount(x, 'key.8')).toBe(0);
  });
});

describe('fanout exchange', () => {
  const fanout = () => new FanoutExchange('f', false, false, false, {});

  it('routes to every destination whatever the key', () => {
    const x = fanout();
    x.bind(binding(q('q1'), 'a'));
    x.bind(binding(q('q2'), 'b'));
    x.bind(binding(e('x1'), ''));
    for (const key of ['', 'a', 'b', 'zzz', '#']) {
      expect(route(x, key)).toEqual(['exchange:x1', 'queue:q1', 'queue:q2']);
    }
  });

  it('delivers once per destination bound several times, until the last binding goes', () => {
    const x = fanout();
    x.bind(binding(q('q1'), 'a'));
    x.bind(binding(q('q1'), 'b'));
    x.bind(binding(q('q1'), 'b', { v: 1 }));
    expect(routeCount(x, 'x')).toBe(1);
    x.unbind(binding(q('q1'), 'a'));
    x.unbind(binding(q('q1'), 'b'));
    expect(route(x, 'x')).toEqual(['queue:q1']);
    x.unbind(binding(q('q1'), 'b', { v: 1 }));
    expect(route(x, 'x')).toEqual([]);
  });

  it('handles many destinations, with removals', () => {
    const x = fanout();
    for (let i = 0; i < 3000; i++) x.bind(binding(q(`q${i}`)));
    expect(routeCount(x, '')).toBe(3000);
    for (let i = 0; i < 3000; i += 3) x.unbindDestination(q(`q${i}`));
    expect(routeCount(x, '')).toBe(2000);
    expect(route(x, '')).not.toContain('queue:q0');
    expect(route(x, '')).toContain('queue:q1');
  });
});

const words = (key: string): string[] => (key === '' ? [] : key.split('.'));

/**
 * Reference matcher written independently of the trie: the classic dynamic programme over
 * (pattern words consumed, key words consumed).
 */
function wordsMatch(p: string[], k: string[]): boolean {
  // row[j]: the pattern words seen so far can consume exactly the first j key words.
  let row = new Uint8Array(k.length + 1);
  let next = new Uint8Array(k.length + 1);
  row[0] = 1;
  for (const pw of p) {
    for (let j = 0; j <= k.length; j++) {
      if (pw === '#') next[j] = row[j] || (j > 0 ? next[j - 1] : 0);
      else next[j] = j > 0 && row[j - 1] && (pw === '*' || pw === k[j - 1]) ? 1 : 0;
    }
    [row, next] = [next, row];
  }
  return row[k.length] === 1;
}

const topicMatches = (pattern: string, key: string): boolean => wordsMatch(words(pattern), words(key));

describe('topic exchange', () => {
  // Every row checked against RabbitMQ 3.10.8: binding key -> the routing keys (from KEYS)
  // that reached a queue bound with it. Key facts: the empty key has zero words (so ""
  // matches only "", "*" does not match "", "#" does); empty words between, before and
  // after dots are real words ("." is two empty words).
  const KEYS = ['', '.', '..', 'a', 'b', 'a.', '.a', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'x.a', 'a.a', 'a.b.c', 'b.a', '...'];
  const RABBITMQ: [string, string[]][] = [
    ['', ['']],
    ['*', ['a', 'b']],
    ['#', KEYS],
    ['#.#', KEYS],
    ['*.#', KEYS.filter((k) => k !== '')],
    ['#.*', KEYS.filter((k) => k !== '')],
    ['.', ['.']],
    ['*.*', ['.', 'a.', '.a', 'a.b', 'x.a', 'a.a', 'b.a']],
    ['a', ['a']],
    ['a.*', ['a.', 'a.b', 'a.a']],
    ['a.#', ['a', 'a.', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.a', 'a.b.c']],
    ['#.a', ['a', '.a', 'x.a', 'a.a', 'b.a']],
    ['*.a', ['.a', 'x.a', 'a.a', 'b.a']],
    ['a.#.b', ['a.b', 'a..b', 'a.x.b', 'a.x.y.b']],
    ['a.*.b', ['a..b', 'a.x.b']],
    ['a..b', ['a..b']],
    ['#.#.a', ['a', '.a', 'x.a', 'a.a', 'b.a']],
    ['a.', ['a.']],
    ['.a', ['.a']],
    ['#.', ['.', '..', 'a.', '...']],
    ['.#', ['.', '..', '.a', '...']],
    ['*.', ['.', 'a.']],
    ['.*', ['.', '.a']],
    ['a.#.#.b', ['a.b', 'a..b', 'a.x.b', 'a.x.y.b']],
    ['#.b.#', ['b', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.b.c', 'b.a']],
    ['a.*.#', ['a.', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.a', 'a.b.c']],
    ['a.#.*', ['a.', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.a', 'a.b.c']],
  ];

  it.each(RABBITMQ)('binding key %j matches what RabbitMQ 3.10 matched', (pattern, expected) => {
    const x = topic();
    x.bind(binding(q('q'), pattern));
    expect(KEYS.filter((k) => routeCount(x, k) === 1)).toEqual(expected);
  });

  it('routes all those bindings at once, each key to the right set', () => {
    const x = topic();
    RABBITMQ.forEach(([pattern], i) => x.bind(binding(q(`q${i}`), pattern)));
    for (const key of KEYS) {
      const want = RABBITMQ.flatMap(([, keys], i) => (keys.includes(key) ? [`queue:q${i}`] : [])).sort();
      expect(route(x, key)).toEqual(want);
    }
  });

  it('agrees with the reference matcher on random keys over a, b, "", *, #', () => {
    // A 90x76 sample of this kind was also checked against RabbitMQ 3.10: no differences.
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const make = (alphabet: string[], maxWords: number) => {
      const n = Math.floor(rnd() * (maxWords + 1));
      return n === 0 ? '' : Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('.');
    };
    const patterns = [...new Set(Array.from({ length: 300 }, () => make(['a', 'b', '', '*', '#', '#'], 6)))];
    const keys = [...new Set(Array.from({ length: 300 }, () => make(['a', 'b', ''], 7)))];
    const x = topic();
    patterns.forEach((p, i) => x.bind(binding(q(`q${i}`), p)));
    for (const key of keys) {
      const want = patterns.flatMap((p, i) => (topicMatches(p, key) ? [`queue:q${i}`] : [])).sort();
      expect(route(x, key)).toEqual(want);
    }
  });

  it('treats * and # as wildcards only as whole words', () => {
    const x = topic();
    x.bind(binding(q('q1'), 'a*.b'));
    x.bind(binding(q('q2'), 'a#'));
    expect(route(x, 'ax.b')).toEqual([]);
    expect(route(x, 'a*.b')).toEqual(['queue:q1']);
    expect(route(x, 'a')).toEqual([]);
    expect(route(x, 'a#')).toEqual(['queue:q2']);
    // A routing key may itself contain * or #: they are plain words there.
    x.bind(binding(q('q3'), '*'));
    expect(route(x, '#')).toEqual(['queue:q3']);
  });

  it('delivers once when several patterns of one destination match', () => {
    const x = topic();
    x.bind(binding(q('q1'), 'a.*'));
    x.bind(binding(q('q1'), 'a.#'));
    x.bind(binding(q('q1'), '#'));
    x.bind(binding(q('q1'), 'a.b'));
    x.bind(binding(q('q1'), 'a.b', { v: 1 }));
    expect(routeCount(x, 'a.b')).toBe(1);
  });

  it('unbinding one pattern leaves others sharing its prefix, and pruned paths can be rebound', () => {
    const x = topic();
    x.bind(binding(q('q1'), 'a.b.c'));
    x.bind(binding(q('q2'), 'a.b'));
    x.bind(binding(q('q3'), 'a.#.c'));
    x.bind(binding(q('q4'), 'a.*.c'));
    x.unbind(binding(q('q1'), 'a.b.c'));
    expect(route(x, 'a.b.c')).toEqual(['queue:q3', 'queue:q4']);
    expect(route(x, 'a.b')).toEqual(['queue:q2']);
    x.unbind(binding(q('q3'), 'a.#.c'));
    x.unbind(binding(q('q4'), 'a.*.c'));
    x.unbind(binding(q('q2'), 'a.b'));
    expect(x.bindingCount).toBe(0);
    expect(route(x, 'a.b.c')).toEqual([]);
    expect(route(x, 'a.b')).toEqual([]);
    x.bind(binding(q('q5'), 'a.#.c'));
    expect(route(x, 'a.b.c')).toEqual(['queue:q5']);
  });

  it('keeps a destination routed while another binding with the same pattern remains', () => {
    const x = topic();
    x.bind(binding(q('q1'), 'a.#', { v: 1 }));
    x.bind(binding(q('q1'), 'a.#', { v: 2 }));
    x.unbind(binding(q('q1'), 'a.#', { v: 1 }));
    expect(route(x, 'a.z')).toEqual(['queue:q1']);
    x.unbindDestination(q('q1'));
    expect(route(x, 'a.z')).toEqual([]);
    expect(x.bindingCount).toBe(0);
  });

  it('routes 10,000 bindings correctly', () => {
    let seed = 99;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const w = (n: number) => `w${Math.floor(rnd() * n)}`;
    const patterns: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = rnd();
      patterns.push(r < 0.6 ? `${w(30)}.${w(30)}.${w(10)}` : r < 0.8 ? `${w(30)}.*.${w(10)}` : r < 0.95 ? `${w(30)}.#` : `#.${w(10)}`);
    }
    const x = topic();
    expect(patterns.filter((p, i) => x.bind(binding(q(`q${i}`), p))).length).toBe(10_000);
    expect(x.bindingCount).toBe(10_000);
    const split = patterns.map(words);
    for (let n = 0; n < 100; n++) {
      const key = `${w(30)}.${w(30)}.${w(10)}`;
      const want = split.flatMap((p, i) => (wordsMatch(p, words(key)) ? [`queue:q${i}`] : [])).sort();
      expect(route(x, key)).toEqual(want);
    }
    // Remove half and check again.
    for (let i = 0; i < 10_000; i += 2) x.unbind(binding(q(`q${i}`), patterns[i]));
    expect(x.bindingCount).toBe(5_000);
    for (let n = 0; n < 50; n++) {
      const key = `${w(30)}.${w(30)}.${w(10)}`;
      const want = split.flatMap((p, i) => (i % 2 === 1 && wordsMatch(p, words(key)) ? [`queue:q${i}`] : [])).sort();
      expect(route(x, key)).toEqual(want);
    }
  });

  it('finishes pathological # patterns fast', () => {
    const x = topic();
    x.bind(binding(q('q1'), '#.#.#.#.#.#.#.#.#.#.#.#.a'));
    x.bind(binding(q('q2'), '#.*.#.*.#.*.#.*.#.b'));
    x.bind(binding(q('q3'), '#.#.#.#.#.#.#.#.#.#'));
    x.bind(binding(q('q4'), Array(40).fill('#').join('.') + '.x.y'));
    const long = Array(128).fill('x').join('.'); // the most words a 255-byte routing key can have
    const longer = Array(2000).fill('x').join('.');
    const start = performance.now();
    expect(route(x, long)).toEqual(['queue:q3']);
    expect(route(x, long + '.a')).toEqual(['queue:q1', 'queue:q3']);
    expect(route(x, long + '.b')).toEqual(['queue:q2', 'queue:q3']);
    expect(route(x, long + '.y')).toEqual(['queue:q3', 'queue:q4']);
    expect(route(x, longer + '.a')).toEqual(['queue:q1', 'queue:q3']);
    expect(route(x, '')).toEqual(['queue:q3']);
    // Naive backtracking would take astronomically long here.
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('headers exchange', () => {
  /** Binds one queue with `args` and says whether a message with `headers` reaches it. */
  function hits(args: FieldTable, headers: FieldTable | undefined): boolean {
    const x = headersX();
    x.bind(binding(q('q'), 'ignored', args));
    return routeCount(x, 'whatever', headers) === 1;
  }

  // Every case in this block was checked against RabbitMQ 3.10.8, where the message had
  // these headers (with AMQP types chosen as noted) and the binding these arguments.
  describe('checked against RabbitMQ 3.10', () => {
    it('x-match all (the default) needs every non-x- argument; none at all matches every message', () => {
      expect(hits({}, undefined)).toBe(true);
      expect(hits({}, {})).toBe(true);
      expect(hits({}, { a: 1 })).toBe(true);
      expect(hits({ 'x-match': 'all' }, undefined)).toBe(true);
      expect(hits({ a: 1, b: 2 }, { a: 1, b: 2 })).toBe(true);
      expect(hits({ a: 1, b: 2 }, { a: 1, b: 2, c: 3 })).toBe(true);
      expect(hits({ a: 1, b: 2 }, { a: 1 })).toBe(false);
      expect(hits({ a: 1, b: 2 }, { b: 2 })).toBe(false);
      expect(hits({ a: 1, b: 2 }, undefined)).toBe(false);
      expect(hits({ a: 1, b: 2 }, {})).toBe(false);
    });

    it('x-match any needs one non-x- argument; none at all matches nothing', () => {
      expect(hits({ 'x-match': 'any' }, undefined)).toBe(false);
      expect(hits({ 'x-match': 'any' }, {})).toBe(false);
      expect(hits({ 'x-match': 'any' }, { a: 1 })).toBe(false);
      expect(hits({ 'x-match': 'any', a: 1, b: 2 }, { a: 1 })).toBe(true);
      expect(hits({ 'x-match': 'any', a: 1, b: 2 }, { b: 2 })).toBe(true);
      expect(hits({ 'x-match': 'any', a: 1, b: 2 }, { a: 2, b: 1 })).toBe(false);
      expect(hits({ 'x-match': 'any', a: 1, b: 2 }, undefined)).toBe(false);
    });

    it('all and any ignore x- arguments, even when the message carries them', () => {
      expect(hits({ 'x-foo': 'bar' }, undefined)).toBe(true);
      expect(hits({ 'x-foo': 'bar' }, { 'x-foo': 'other' })).toBe(true);
      expect(hits({ 'x-match': 'any', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(false);
      expect(hits({ 'x-match': 'any', a: 1, 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(false);
      expect(hits({ 'x-match': 'any', a: 1, 'x-foo': 'bar' }, { a: 1 })).toBe(true);
      // The prefix is case-sensitive: X-foo is an ordinary argument.
      expect(hits({ 'X-foo': 'bar' }, undefined)).toBe(false);
      expect(hits({ 'X-foo': 'bar' }, { 'X-foo': 'bar' })).toBe(true);
    });

    it('all-with-x and any-with-x include x- arguments, but never x-match itself', () => {
      expect(hits({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(true);
      expect(hits({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, { a: 1 })).toBe(false);
      expect(hits({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, undefined)).toBe(false);
      expect(hits({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, { 'x-match': 'all-with-x', 'x-foo': 'bar' })).toBe(true);
      expect(hits({ 'x-match': 'all-with-x', a: 1 }, { a: 1 })).toBe(true);
      expect(hits({ 'x-match': 'any-with-x', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(true);
      expect(hits({ 'x-match': 'any-with-x', a: 1, 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(true);
      expect(hits({ 'x-match': 'any-with-x', a: 1, 'x-foo': 'bar' }, { a: 1 })).toBe(true);
      expect(hits({ 'x-match': 'any-with-x', a: 1, 'x-foo': 'bar' }, { b: 1 })).toBe(false);
      // Only x-match: all-with-x matches everything, any-with-x nothing.
      expect(hits({ 'x-match': 'all-with-x' }, undefined)).toBe(true);
      expect(hits({ 'x-match': 'all-with-x' }, { 'x-match': 'any-with-x' })).toBe(true);
      expect(hits({ 'x-match': 'any-with-x' }, { 'x-match': 'any-with-x' })).toBe(false);
      expect(hits({ 'x-match': 'any-with-x' }, undefined)).toBe(false);
    });

    it('a void argument matches on presence of the header, whatever its value', () => {
      for (const value of [1, 1.5, '1', '', 0, false, true, null, Buffer.from('ab'), [1], { b: 1 }, new Decimal(0, 1)]) {
        expect(hits({ a: null }, { a: value })).toBe(true);
        expect(hits({ 'x-match': 'any', a: null }, { a: value })).toBe(true);
      }
      expect(hits({ a: null }, { b: 1 })).toBe(false);
      expect(hits({ a: null }, undefined)).toBe(false);
      expect(hits({ 'x-match': 'any', a: null }, {})).toBe(false);
      expect(hits({ 'x-match': 'any', a: 1, b: null }, { b: 'z' })).toBe(true);
      expect(hits({ a: null, b: null }, { a: 1, b: 1 })).toBe(true);
      expect(hits({ a: null, b: null }, { a: 1 })).toBe(false);
    });

    it('a void header matches only a void argument', () => {
      expect(hits({ a: 1 }, { a: null })).toBe(false);
      expect(hits({ a: '' }, { a: null })).toBe(false);
      expect(hits({ a: false }, { a: null })).toBe(false);
    });

    it('numbers of every width, floats and timestamps compare by value', () => {
      // RabbitMQ matched int 1 against byte/short/int/long/unsigned 1, float and double
      // 1.0, and timestamp 1, in both directions.
      expect(hits({ a: 1 }, { a: 1 })).toBe(true);
      expect(hits({ a: 1 }, { a: 1.0 })).toBe(true);
      expect(hits({ a: 1 }, { a: new Date(1000) })).toBe(true);
      expect(hits({ a: new Date(1000) }, { a: 1 })).toBe(true);
      expect(hits({ a: new Date(1000) }, { a: new Date(1000) })).toBe(true);
      expect(hits({ a: 1.5 }, { a: 1.5 })).toBe(true);
      expect(hits({ a: 1.5 }, { a: 1 })).toBe(false);
      expect(hits({ a: 0 }, { a: 0 })).toBe(true);
    });

    it('numbers do not equal strings, booleans or decimals', () => {
      expect(hits({ a: 1 }, { a: '1' })).toBe(false);
      expect(hits({ a: '1' }, { a: 1 })).toBe(false);
      expect(hits({ a: 1 }, { a: true })).toBe(false);
      expect(hits({ a: true }, { a: 1 })).toBe(false);
      expect(hits({ a: 0 }, { a: false })).toBe(false);
      expect(hits({ a: false }, { a: 0 })).toBe(false);
      expect(hits({ a: 1 }, { a: new Decimal(0, 1) })).toBe(false);
      expect(hits({ a: new Decimal(0, 1) }, { a: 1 })).toBe(false);
    });

    it('decimals compare by scale and digits', () => {
      expect(hits({ a: new Decimal(0, 1) }, { a: new Decimal(0, 1) })).toBe(true);
      expect(hits({ a: new Decimal(1, 10) }, { a: new Decimal(1, 10) })).toBe(true);
      expect(hits({ a: new Decimal(1, 10) }, { a: new Decimal(0, 1) })).toBe(false);
    });

    it('strings, byte arrays and booleans', () => {
      expect(hits({ a: 'ab' }, { a: 'ab' })).toBe(true);
      expect(hits({ a: 'ab' }, { a: 'AB' })).toBe(false);
      expect(hits({ a: '' }, { a: '' })).toBe(true);
      expect(hits({ a: '' }, {})).toBe(false);
      // A long string and a byte array with the same bytes are equal.
      expect(hits({ a: Buffer.from('ab') }, { a: 'ab' })).toBe(true);
      expect(hits({ a: 'ab' }, { a: Buffer.from('ab') })).toBe(true);
      expect(hits({ a: Buffer.from('ab') }, { a: Buffer.from('ab') })).toBe(true);
      expect(hits({ a: Buffer.from('ab') }, { a: Buffer.from('abc') })).toBe(false);
      expect(hits({ a: true }, { a: true })).toBe(true);
      expect(hits({ a: true }, { a: false })).toBe(false);
      expect(hits({ a: false }, { a: false })).toBe(true);
    });

    it('nested tables and arrays compare strictly, tables in key order', () => {
      expect(hits({ a: { b: 1, c: 2 } }, { a: { b: 1, c: 2 } })).toBe(true);
      expect(hits({ a: { b: 1, c: 2 } }, { a: { c: 2, b: 1 } })).toBe(false);
      expect(hits({ a: { b: { c: 'x' } } }, { a: { b: { c: 'x' } } })).toBe(true);
      expect(hits({ a: [1] }, { a: [1] })).toBe(true);
      expect(hits({ a: [1] }, { a: [1, 1] })).toBe(false);
      expect(hits({ a: [1] }, { a: 1 })).toBe(false);
      // Inside containers RabbitMQ keeps AMQP types, so a nested string and byte array differ.
      expect(hits({ a: ['ab'] }, { a: [Buffer.from('ab')] })).toBe(false);
    });

    it('refuses an invalid x-match at bind time (406 PRECONDITION_FAILED)', () => {
      const x = headersX();
      for (const bad of ['ANY', 'bogus', '', 1, true]) {
        expect(bindingArgumentsError(x, { 'x-match': bad, a: 1 })).toMatch(/x-match/);
      }
      for (const good of ['all', 'any', 'all-with-x', 'any-with-x']) {
        expect(bindingArgumentsError(x, { 'x-match': good })).toBeUndefined();
      }
      expect(bindingArgumentsError(x, { a: 1 })).toBeUndefined();
      // Only headers exchanges care about x-match.
      expect(bindingArgumentsError(topic(), { 'x-match': 'bogus' })).toBeUndefined();
    });
  });

  it('compares longs decoded as bigint by value too', () => {
    expect(hits({ a: 1 }, { a: 1n })).toBe(true);
    expect(hits({ a: 1n }, { a: 1 })).toBe(true);
    expect(hits({ a: 2n ** 60n }, { a: 2n ** 60n })).toBe(true);
    expect(hits({ a: 2n ** 60n }, { a: 2n ** 60n + 1n })).toBe(false);
  });

  it('treats an x-match it does not know as all, should one get past validation', () => {
    expect(hits({ 'x-match': 'bogus', a: 1 }, { a: 1 })).toBe(true);
    expect(hits({ 'x-match': 'bogus', a: 1, b: 2 }, { a: 1 })).toBe(false);
  });

  it('looks only at own header keys, not the prototype of a plain object', () => {
    expect(hits({ constructor: null }, {})).toBe(false);
    expect(hits({ toString: null }, undefined)).toBe(false);
    expect(hits({ 'x-match': 'any', hasOwnProperty: null }, { a: 1 })).toBe(false);
  });

  it('treats a header or argument holding undefined as absent', () => {
    expect(hits({ a: null }, { a: undefined })).toBe(false);
    expect(hits({ a: undefined }, {})).toBe(true);
  });

  it('routes each destination once, and unbinds', () => {
    const x = headersX();
    x.bind(binding(q('q1'), '', { a: 1 }));
    x.bind(binding(q('q1'), '', { 'x-match': 'any', a: 1, b: 2 }));
    x.bind(binding(q('q2'), '', { b: 2 }));
    expect(route(x, '', { a: 1, b: 2 })).toEqual(['queue:q1', 'queue:q2']);
    x.unbind(binding(q('q1'), '', { a: 1 }));
    expect(route(x, '', { a: 1 })).toEqual(['queue:q1']);
    x.unbind(binding(q('q1'), '', { b: 2, a: 1, 'x-match': 'any' }));
    expect(route(x, '', { a: 1 })).toEqual([]);
    expect(route(x, '', { b: 2 })).toEqual(['queue:q2']);
    x.unbindDestination(q('q2'));
    expect(route(x, '', { b: 2 })).toEqual([]);
    expect(x.bindingCount).toBe(0);
  });

  it('ignores the routing key', () => {
    const x = headersX();
    x.bind(binding(q('q1'), 'only-this', { a: 1 }));
    expect(route(x, 'something-else', { a: 1 })).toEqual(['queue:q1']);
  });
});

describe('topic exchange route cache', () => {
  // Past 32 bindings a topic exchange remembers where routing keys went; any binding
  // change must make it forget, and keys that never repeat must not make it wrong.
  function big(): Exchange {
    const x = topic();
    for (let i = 0; i < 40; i++) x.bind(binding(q(`q${i}`), `k.${i}.*`));
    return x;
  }

  it('routes a repeated key the same way as the first time', () => {
    const x = big();
    expect(route(x, 'k.7.a')).toEqual(['queue:q7']);
    expect(route(x, 'k.7.a')).toEqual(['queue:q7']);
    expect(route(x, 'k.99.a')).toEqual([]);
    expect(route(x, 'k.99.a')).toEqual([]);
  });

  it('forgets on bind, unbind and when a destination goes', () => {
    const x = big();
    expect(route(x, 'k.3.z')).toEqual(['queue:q3']);
    x.bind(binding(q('extra'), '#.z'));
    expect(route(x, 'k.3.z')).toEqual(['queue:extra', 'queue:q3']);
    x.unbind(binding(q('q3'), 'k.3.*'));
    expect(route(x, 'k.3.z')).toEqual(['queue:extra']);
    x.unbindDestination(q('extra'));
    expect(route(x, 'k.3.z')).toEqual([]);
    x.bind(binding(q('q3'), 'k.3.*'));
    expect(route(x, 'k.3.z')).toEqual(['queue:q3']);
  });

  it('stays right through fills by keys that never repeat, and after resting', () => {
    const x = big();
    for (let i = 0; i < 5000; i++) {
      const n = i % 50;
      expect(route(x, `k.${n}.u${i}`)).toEqual(n < 40 ? [`queue:q${n}`] : []);
    }
    // Past the rest, a repeated key is cached again and still right.
    for (let i = 0; i < 70_000; i++) routeCount(x, `k.1.r${i}`);
    for (let i = 0; i < 3; i++) expect(route(x, 'k.5.same')).toEqual(['queue:q5']);
  });

  it('drops nothing when the cache starts over at its size limit', () => {
    const x = big();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1500; i++) expect(routeCount(x, `k.${i % 40}.w${i}`)).toBe(1);
    }
  });
});
