"""Publisher confirms and mandatory returns."""

import pika

from support import (Broker, QUIET, UnroutableError, channel_error, eq,
                     message_count, pump)


def test_confirm_publish_to_existing_queue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'confirm')
        ch.confirm_delivery()
        for i in range(5):
            # BlockingChannel.basic_publish waits for the ack; raises on nack
            eq(ch.basic_publish('', q, b'm%d' % i), None, 'basic_publish result')
        ch.basic_publish('', q, b'mandatory ok', mandatory=True)
        # confirmed => enqueued: visible from another channel right away
        eq(message_count(conn.channel(), q), 6, 'confirmed messages are enqueued')


def test_confirm_mandatory_unroutable_raises(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'nowhere', 'direct')
        ch.confirm_delivery()
        try:
            ch.basic_publish(ex, 'no-binding', b'lost', mandatory=True)
        except UnroutableError as e:
            eq(len(e.messages), 1, 'returned messages')
            r = e.messages[0]
            eq((r.method.reply_code, r.method.reply_text), (312, 'NO_ROUTE'),
               'basic.return code/text')
            eq((r.method.exchange, r.method.routing_key, r.body),
               (ex, 'no-binding', b'lost'), 'returned exchange/routing key/body')
        else:
            raise AssertionError('expected UnroutableError for mandatory publish with no route')
        # default exchange, no such queue
        try:
            ch.basic_publish('', b.name('no-such-queue'), b'lost', mandatory=True)
        except UnroutableError as e:
            eq(e.messages[0].method.reply_code, 312, 'reply code')
        else:
            raise AssertionError('expected UnroutableError via the default exchange')
        assert ch.is_open, 'channel must stay open after a basic.return'
        # non-mandatory unroutable publish is simply acked (dropped)
        eq(ch.basic_publish(ex, 'no-binding', b'dropped'), None, 'non-mandatory publish')


def test_mandatory_return_without_confirms(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        returned = []
        ch.add_on_return_callback(lambda c, m, p, body: returned.append((m, p, body)))
        ex = b.exchange(ch, 'nowhere', 'direct')
        ch.basic_publish(ex, 'rk', b'back to sender',
                         pika.BasicProperties(correlation_id='c1'), mandatory=True)
        ch.basic_publish(ex, 'rk', b'silently dropped')
        pump(conn, QUIET)
        eq(len(returned), 1, 'number of basic.return')
        m, p, body = returned[0]
        eq((m.reply_code, m.reply_text, m.exchange, m.routing_key),
           (312, 'NO_ROUTE', ex, 'rk'), 'basic.return fields')
        eq((p.correlation_id, body), ('c1', b'back to sender'), 'returned content')


def test_confirm_and_tx_are_exclusive(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ch.confirm_delivery()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - cannot switch from confirm to tx mode'):
            ch.tx_select()
        ch2 = conn.channel()
        ch2.tx_select()
        with channel_error(ch2, 406, 'PRECONDITION_FAILED - cannot switch from tx to confirm mode'):
            ch2.confirm_delivery()
