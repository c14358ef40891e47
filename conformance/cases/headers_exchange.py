"""Headers exchange: x-match all/any (expectations recorded from RabbitMQ 3.10.8).

Observed rules: the default x-match is 'all'; binding arguments whose names
start with 'x-' are ignored for matching (so a binding with only x- keys and
x-match=all matches every message, with x-match=any none); values are
compared with their types (1 != '1'); a void (None) binding value matches any
message that has the header.
"""

import pika

from support import Broker, eq, get_all, wait_message_count

BINDINGS = {
    'all': {'x-match': 'all', 'format': 'pdf', 'type': 'report'},
    'any': {'x-match': 'any', 'format': 'pdf', 'type': 'log'},
    'default': {'format': 'pdf', 'type': 'report'},
    'all_empty': {'x-match': 'all'},
    'any_empty': {'x-match': 'any'},
    'int': {'x-match': 'all', 'n': 1},
    'x_only': {'x-match': 'all', 'x-foo': 'bar'},
    'void': {'x-match': 'all', 'flag': None},
}

MESSAGES = [
    ('pdf_report', {'format': 'pdf', 'type': 'report'}),
    ('pdf_report_extra', {'format': 'pdf', 'type': 'report', 'x': 1}),
    ('pdf', {'format': 'pdf'}),
    ('log', {'type': 'log'}),
    ('no_headers', None),
    ('empty_headers', {}),
    ('zip_report', {'format': 'zip', 'type': 'report'}),
    ('n_int', {'n': 1}),
    ('n_str', {'n': '1'}),
    ('x_foo', {'x-foo': 'bar'}),
    ('flag', {'flag': 'yes'}),
]
ALL = [m for m, _ in MESSAGES]

EXPECTED = {
    'all': ['pdf_report', 'pdf_report_extra'],
    'any': ['pdf_report', 'pdf_report_extra', 'pdf', 'log'],
    'default': ['pdf_report', 'pdf_report_extra'],
    'all_empty': ALL,
    'any_empty': [],
    'int': ['n_int'],
    'x_only': ALL,
    'void': ['flag'],
}


def test_headers_exchange_x_match(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'headers', 'headers')
        queues = {}
        for name, args in BINDINGS.items():
            q = b.queue(ch, 'h_' + name)
            ch.queue_bind(q, ex, routing_key='ignored', arguments=args)
            queues[name] = q
        for body, headers in MESSAGES:
            ch.basic_publish(ex, 'whatever', body.encode(),
                             pika.BasicProperties(headers=headers))
        wait_message_count(ch, queues['all_empty'], len(MESSAGES))
        problems = []
        for name, expected in EXPECTED.items():
            got = [x.decode() for x in get_all(ch, queues[name])]
            if got != expected:
                problems.append('binding %s %r: expected %r, got %r'
                                % (name, BINDINGS[name], expected, got))
        assert not problems, '; '.join(problems)


def test_headers_unbind_with_arguments(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'headers', 'headers')
        q = b.queue(ch, 'q')
        a1 = {'x-match': 'all', 'k': 'a'}
        a2 = {'x-match': 'all', 'k': 'b'}
        ch.queue_bind(q, ex, '', arguments=a1)
        ch.queue_bind(q, ex, '', arguments=a2)
        ch.queue_unbind(q, ex, '', arguments=a1)
        for v in ('a', 'b'):
            ch.basic_publish(ex, '', v.encode(), pika.BasicProperties(headers={'k': v}))
        wait_message_count(ch, q, 1)
        eq(get_all(ch, q), [b'b'], 'only the remaining binding routes')
