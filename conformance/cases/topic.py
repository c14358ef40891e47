"""Tutorial 5: topics - '*' is exactly one word, '#' is zero or more words.

The expectation table was recorded from RabbitMQ 3.10.8.  Note in particular
that words may be empty ('a..b' has three words, the middle one empty), that
'#' also matches zero words ('lazy.#' matches 'lazy', 'a.#.b' matches 'a.b'),
and that the empty routing key has zero words: '#' and the empty pattern
match it, '*' does not.
"""

from support import Broker, eq, get_all, wait_message_count

KEYS = [
    'quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox',
    'lazy.brown.fox', 'lazy.pink.rabbit', 'quick.brown.fox', 'orange',
    'quick.orange.male.rabbit', 'lazy.orange.male.rabbit', 'lazy',
    'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'b', 'a', '', 'a.', '.a', 'x.a.y', 'a.a',
]

EXPECTED = {
    # the tutorial's bindings
    '*.orange.*': ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox'],
    '*.*.rabbit': ['quick.orange.rabbit', 'lazy.pink.rabbit'],
    'lazy.#': ['lazy.orange.elephant', 'lazy.brown.fox', 'lazy.pink.rabbit',
               'lazy.orange.male.rabbit', 'lazy'],
    # '#' alone matches everything, including the empty key
    '#': list(KEYS),
    '#.#': list(KEYS),
    # '#' matching zero words in the middle / at the start
    'a.#.b': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b'],
    'a.#.#.b': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b'],
    '#.b': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'b'],
    '#.a.#': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a', 'a.', '.a', 'x.a.y', 'a.a'],
    'a.#': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a', 'a.', 'a.a'],
    # '*' is exactly one (possibly empty) word
    'a.*': ['a.b', 'a.', 'a.a'],
    'a.*.b': ['a..b', 'a.x.b'],
    '*': ['orange', 'lazy', 'b', 'a'],
    # empty words are words
    'a..b': ['a..b'],
    # the empty pattern only matches the empty key
    '': [''],
}


def test_topic_wildcards(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'topic_logs', 'topic')
        queues = {}
        for i, pattern in enumerate(EXPECTED):
            q = b.queue(ch, 'topic%d' % i)
            ch.queue_bind(q, ex, pattern)
            queues[pattern] = q
        for key in KEYS:
            ch.basic_publish(ex, key, ('<%s>' % key).encode())
        wait_message_count(ch, queues['#'], len(KEYS))
        problems = []
        for pattern, keys in EXPECTED.items():
            got = [body.decode()[1:-1] for body in get_all(ch, queues[pattern])]
            if got != keys:
                missing = [k for k in keys if k not in got]
                extra = [k for k in got if k not in keys]
                problems.append('pattern %r: missing %r, unexpected %r, got %r'
                                % (pattern, missing, extra, got))
        assert not problems, '; '.join(problems)


def test_topic_overlapping_bindings_deliver_once(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'topic_logs', 'topic')
        q = b.queue(ch, 'q2')
        ch.queue_bind(q, ex, '*.*.rabbit')
        ch.queue_bind(q, ex, 'lazy.#')
        ch.queue_bind(q, ex, '#')
        for key in ('lazy.pink.rabbit', 'quick.brown.fox'):
            ch.basic_publish(ex, key, key.encode())
        wait_message_count(ch, q, 2)
        eq(get_all(ch, q), [b'lazy.pink.rabbit', b'quick.brown.fox'],
           'one copy per queue even when several bindings match')


def test_topic_unbind(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'topic_logs', 'topic')
        q = b.queue(ch, 'q')
        ch.queue_bind(q, ex, 'kern.*')
        ch.queue_bind(q, ex, '*.critical')
        ch.queue_unbind(q, ex, 'kern.*')
        for key in ('kern.info', 'kern.critical', 'app.critical'):
            ch.basic_publish(ex, key, key.encode())
        wait_message_count(ch, q, 2)
        eq(get_all(ch, q), [b'kern.critical', b'app.critical'], 'after unbind')
