"""kombu (pyamqp transport) producer/consumer checks against a broker.

    LEVERET_URL=amqp://guest:guest@127.0.0.1:5672 /usr/bin/python3 kombu_check.py

Checks: a plain JSON round trip; a queue declared with x-max-priority (kombu's
Queue(max_priority=10)) filled while nobody consumes, then consumed: higher
priority first, FIFO within a priority; per-message expiration (100 ms)
drops a message before it is consumed while others are delivered. Every queue
and exchange is named after a unique prefix (LEVERET_KOMBU_PREFIX) and deleted
at the end. Prints one line per check and "N passed, M failed"; exits 1 when a
check failed.
"""

import os
import socket
import sys
import time
import traceback
import uuid

from kombu import Connection, Consumer, Exchange, Producer, Queue

import amqp_trace

amqp_trace.install_from_env()

PREFIX = os.environ.get('LEVERET_KOMBU_PREFIX') or 'leveret-kombu-%d-%s' % (os.getpid(), uuid.uuid4().hex[:6])
EXCHANGE = Exchange(PREFIX + '.x', type='direct', durable=False)
CHECKS = []
DECLARED_QUEUES = []


def broker_url():
    url = os.environ.get('LEVERET_URL', 'amqp://guest:guest@127.0.0.1:5672')
    for scheme in ('amqp://', 'amqps://'):
        if url.startswith(scheme):
            url = 'py' + url
            break
    if '/' not in url.split('://', 1)[1]:
        url += '//'
    return url


def connect():
    # confirm_publish: publish() returns once the broker has confirmed, so the
    # messages are in the queue before we look at it.
    conn = Connection(broker_url(), connect_timeout=10, transport_options={'confirm_publish': True})
    conn.connect()
    return conn


def check(fn):
    CHECKS.append(fn)
    return fn


def declare(conn, queue):
    bound = queue(conn.default_channel)
    bound.declare()
    DECLARED_QUEUES.append(queue.name)
    return bound


def message_count(conn, queue):
    _name, count, _consumers = queue(conn.default_channel).queue_declare(passive=True)
    return count


def consume(conn, queue, expect, timeout=5.0, linger=0.5, prefetch=None):
    """Consume from `queue` until `expect` messages came (then `linger` s more
    to catch extra ones) or `timeout`. Returns [(body, message)] in order."""
    got = []

    def on_message(body, message):
        got.append((body, message))
        message.ack()

    channel = conn.channel()
    try:
        consumer = Consumer(channel, queues=[queue], callbacks=[on_message], accept=['json'])
        if prefetch:
            consumer.qos(prefetch_count=prefetch)
        with consumer:
            deadline = time.time() + timeout
            settle = None
            while True:
                now = time.time()
                if len(got) >= expect and settle is None:
                    settle = now + linger
                end = min(deadline, settle) if settle else deadline
                if now >= end:
                    break
                try:
                    conn.drain_events(timeout=min(0.2, end - now))
                except socket.timeout:
                    pass
    finally:
        channel.close()
    return got


@check
def json_round_trip(conn):
    queue = Queue(PREFIX + '.plain', EXCHANGE, routing_key='plain', durable=False)
    declare(conn, queue)
    producer = Producer(conn.default_channel, exchange=EXCHANGE, routing_key='plain', serializer='json')
    for i in range(5):
        producer.publish({'n': i, 'text': 'héllo %d' % i}, headers={'x-seq': i}, correlation_id='c%d' % i)
    count = message_count(conn, queue)
    assert count == 5, 'queue holds %d messages, expected 5' % count
    got = consume(conn, queue, expect=5)
    bodies = [b for b, _m in got]
    assert bodies == [{'n': i, 'text': 'héllo %d' % i} for i in range(5)], 'got %r' % (bodies,)
    for i, (_b, m) in enumerate(got):
        assert m.headers.get('x-seq') == i, 'headers %r' % (m.headers,)
        assert m.properties.get('correlation_id') == 'c%d' % i, 'properties %r' % (m.properties,)
        assert m.content_type == 'application/json', m.content_type
    return '5 JSON messages with headers and correlation ids, in order'


@check
def priority_queue_order(conn):
    queue = Queue(PREFIX + '.prio', EXCHANGE, routing_key='prio', durable=False, max_priority=10)
    declare(conn, queue)
    producer = Producer(conn.default_channel, exchange=EXCHANGE, routing_key='prio', serializer='json')
    sent = [(1, 'a'), (5, 'b'), (9, 'c'), (5, 'd'), (1, 'e'), (9, 'f'), (0, 'g'), (10, 'h'), (5, 'i')]
    for prio, tag in sent:
        producer.publish({'tag': tag, 'priority': prio}, priority=prio)
    count = message_count(conn, queue)
    assert count == len(sent), 'queue holds %d messages, expected %d' % (count, len(sent))
    got = consume(conn, queue, expect=len(sent), prefetch=1)
    order = [b['tag'] for b, _m in got]
    # Stable sort: higher priority first, publish order within a priority.
    expected = [tag for _p, tag in sorted(sent, key=lambda pt: -pt[0])]
    assert order == expected, 'delivery order %s, expected %s' % (''.join(order), ''.join(expected))
    prios = [m.properties.get('priority') for _b, m in got]
    return 'order %s (priorities %s)' % (''.join(order), prios)


@check
def per_message_expiration(conn):
    queue = Queue(PREFIX + '.ttl', EXCHANGE, routing_key='ttl', durable=False)
    declare(conn, queue)
    producer = Producer(conn.default_channel, exchange=EXCHANGE, routing_key='ttl', serializer='json')
    producer.publish({'tag': 'short-1'}, expiration=0.1)   # expiration "100"
    producer.publish({'tag': 'keep'})
    producer.publish({'tag': 'long'}, expiration=60)       # expiration "60000"
    producer.publish({'tag': 'short-2'}, expiration=0.1)   # behind two live ones
    time.sleep(0.6)
    got = consume(conn, queue, expect=2, linger=1.0)
    tags = [b['tag'] for b, _m in got]
    assert tags == ['keep', 'long'], 'delivered %r, expected only keep, long (the 100 ms ones must expire)' % (tags,)
    long_exp = got[1][1].properties.get('expiration')
    assert long_exp == '60000', 'expiration property of the delivered message is %r' % (long_exp,)
    return 'delivered %r; both 100 ms messages expired' % (tags,)


def cleanup():
    try:
        conn = Connection(broker_url(), connect_timeout=10)
        with conn:
            ch = conn.channel()
            for name in DECLARED_QUEUES:
                try:
                    ch.queue_delete(name)
                except Exception:
                    ch = conn.channel()
            try:
                ch.exchange_delete(EXCHANGE.name)
            except Exception:
                pass
    except Exception as exc:
        print('cleanup failed: %r' % (exc,), file=sys.stderr)


def main():
    passed = failed = 0
    try:
        for fn in CHECKS:
            t0 = time.time()
            conn = None
            try:
                conn = connect()
                detail = fn(conn)
            except Exception as exc:
                failed += 1
                print('FAIL %s (%.2fs): %s: %s' % (fn.__name__, time.time() - t0, type(exc).__name__, exc), flush=True)
                if not isinstance(exc, AssertionError):
                    traceback.print_exc(limit=6)
                    sys.stderr.flush()
            else:
                passed += 1
                print('PASS %s (%.2fs): %s' % (fn.__name__, time.time() - t0, detail), flush=True)
            finally:
                if conn is not None:
                    try:
                        conn.release()
                    except Exception:
                        pass
    finally:
        cleanup()
    print('%d passed, %d failed' % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
