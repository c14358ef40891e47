"""Tutorial 4: routing - direct exchange, severities, multiple bindings."""

from support import Broker, QUIET, eq, get_all, pump, wait_message_count


def test_direct_routing_by_severity(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'direct_logs', 'direct')
        errors = b.queue(ch, 'errors')
        everything = b.queue(ch, 'all')
        ch.queue_bind(errors, ex, 'error')
        for sev in ('info', 'warning', 'error'):
            ch.queue_bind(everything, ex, sev)
        for sev in ('info', 'warning', 'error', 'debug', 'ERROR', 'error '):
            ch.basic_publish(ex, sev, ('%s message' % sev).encode())
        wait_message_count(ch, everything, 3)
        pump(conn, QUIET)
        eq(get_all(ch, errors), [b'error message'], 'queue bound to error')
        eq(get_all(ch, everything),
           [b'info message', b'warning message', b'error message'],
           'queue bound to info, warning and error')


def test_multiple_queues_same_binding_key(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'direct_logs', 'direct')
        q1 = b.queue(ch, 'q1')
        q2 = b.queue(ch, 'q2')
        ch.queue_bind(q1, ex, 'black')
        ch.queue_bind(q2, ex, 'black')
        ch.queue_bind(q2, ex, 'green')
        ch.basic_publish(ex, 'black', b'black')
        ch.basic_publish(ex, 'green', b'green')
        wait_message_count(ch, q2, 2)
        eq(get_all(ch, q1), [b'black'], 'q1')
        eq(get_all(ch, q2), [b'black', b'green'], 'q2')


def test_duplicate_binding_delivers_once(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'dup', 'direct')
        q = b.queue(ch, 'q')
        ch.queue_bind(q, ex, 'k')
        ch.queue_bind(q, ex, 'k')  # idempotent
        ch.basic_publish(ex, 'k', b'once')
        pump(conn, QUIET)
        eq(get_all(ch, q), [b'once'], 'delivered once')


def test_unbind_stops_routing(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'unbind', 'direct')
        q = b.queue(ch, 'q')
        ch.queue_bind(q, ex, 'a')
        ch.queue_bind(q, ex, 'b')
        ch.queue_unbind(q, ex, 'a')
        ch.basic_publish(ex, 'a', b'a')
        ch.basic_publish(ex, 'b', b'b')
        pump(conn, QUIET)
        eq(get_all(ch, q), [b'b'], 'only the remaining binding routes')
        # unbinding something that is not bound is not an error
        ch.queue_unbind(q, ex, 'never-bound')


def test_default_exchange_routes_by_queue_name(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'named')
        ch.basic_publish('', q, b'direct to queue')
        ch.basic_publish('', q + '.nope', b'nowhere')
        pump(conn, QUIET)
        eq(get_all(ch, q), [b'direct to queue'], 'queue contents')
        eq(ch.exchange_declare('amq.direct', 'direct', durable=True, passive=True)
           .method.NAME, 'Exchange.DeclareOk', 'amq.direct exists')
