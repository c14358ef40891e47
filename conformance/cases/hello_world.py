"""Tutorial 1: "Hello World" - default exchange, basic.get and basic.consume."""

import pika

from support import Broker, Collector, eq, get_all, wait_message_count


def test_publish_default_exchange_basic_get(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'hello')
        ch.basic_publish('', q, b'Hello World!')
        method, props, body = ch.basic_get(q, auto_ack=True)
        assert method is not None, 'basic.get returned get-empty'
        eq(body, b'Hello World!', 'body')
        eq(method.exchange, '', 'delivered exchange')
        eq(method.routing_key, q, 'delivered routing key')
        eq(method.redelivered, False, 'redelivered')
        eq(method.message_count, 0, 'get-ok message_count')
        eq(ch.basic_get(q, auto_ack=True), (None, None, None), 'second basic.get')


def test_publish_default_exchange_consume(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'hello')
        pconn, pch = b.channel()
        col = Collector(ch, q, auto_ack=True)
        pch.basic_publish('', q, b'Hello World!',
                          pika.BasicProperties(content_type='text/plain',
                                               headers={'k': 'v'}))
        col.wait(1, conn)
        d = col.deliveries[0]
        eq(d.body, b'Hello World!', 'body')
        eq(d.method.consumer_tag, col.consumer_tag, 'consumer tag')
        eq(d.method.routing_key, q, 'routing key')
        eq(d.properties.content_type, 'text/plain', 'content_type')
        eq(d.properties.headers, {'k': 'v'}, 'headers')


def test_declare_ok_counts(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'counts')
        for i in range(3):
            ch.basic_publish('', q, b'm%d' % i)
        # declare-ok's message_count may lag publishes (even on the same
        # channel) in RabbitMQ, so wait until it shows them
        wait_message_count(ch, q, 3)
        ok = ch.queue_declare(q)  # redeclare with the same properties is fine
        eq(ok.method.message_count, 3, 'declare-ok message_count')
        eq(ok.method.consumer_count, 0, 'declare-ok consumer_count')
        ch.basic_consume(q, lambda *a: None, auto_ack=False)
        ok = ch.queue_declare(q, passive=True)
        eq(ok.method.consumer_count, 1, 'passive declare-ok consumer_count')


def test_large_and_empty_bodies(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'bodies')
        big = bytes(range(256)) * 4096 + b'tail'  # 1 MiB+, spans many frames
        ch.basic_publish('', q, b'')
        ch.basic_publish('', q, big)
        got = get_all(ch, q)
        eq(len(got), 2, 'number of messages')
        eq(got[0], b'', 'empty body')
        assert got[1] == big, 'large body differs (len %d vs %d)' % (len(got[1]), len(big))
