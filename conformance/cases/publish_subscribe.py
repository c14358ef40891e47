"""Tutorial 3: publish/subscribe - fanout exchange, server-named exclusive queues."""

from support import (Broker, Collector, QUIET, eq, fail, message_count, pump,
                     wait_until, ChannelClosedByBroker)


def test_server_named_exclusive_queue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ok = ch.queue_declare('', exclusive=True)
        name = ok.method.queue
        assert name.startswith('amq.gen-'), 'server-named queue %r' % name
        eq((ok.method.message_count, ok.method.consumer_count), (0, 0),
           'declare-ok counts')
        ok2 = ch.queue_declare('', exclusive=True)
        assert ok2.method.queue != name, 'two server-named queues share a name'
        # usable from another channel of the same connection
        other = conn.channel()
        other.basic_publish('', name, b'x')
        wait_until(lambda: message_count(other, name) == 1, conn,
                   what='message in the exclusive queue')


def test_fanout_every_subscriber_gets_every_message(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'logs', 'fanout')
        subs = []
        for i in range(3):
            c, sch = b.channel()
            q = sch.queue_declare('', exclusive=True).method.queue
            sch.queue_bind(q, ex, routing_key='ignored-%d' % i)
            subs.append((c, Collector(sch, q, auto_ack=True)))
        msgs = [b'log %d' % i for i in range(5)]
        for i, m in enumerate(msgs):
            ch.basic_publish(ex, 'any.key.%d' % i, m)
        for c, col in subs:
            col.wait(5, c)
        pump([c for c, _ in subs], QUIET)
        for i, (c, col) in enumerate(subs):
            eq(col.bodies, msgs, 'subscriber %d bodies' % i)
            eq({d.method.exchange for d in col.deliveries}, {ex}, 'exchange field')
            eq([d.method.routing_key for d in col.deliveries],
               ['any.key.%d' % i for i in range(5)], 'routing keys preserved')


def test_fanout_without_subscribers_drops(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'logs', 'fanout')
        ch.basic_publish(ex, '', b'nobody listens')
        q = ch.queue_declare('', exclusive=True).method.queue
        ch.queue_bind(q, ex)
        ch.basic_publish(ex, '', b'after bind')
        pump(conn, QUIET)
        eq(ch.basic_get(q, auto_ack=True)[2], b'after bind',
           'only the message published after the bind')
        eq(ch.basic_get(q, auto_ack=True), (None, None, None), 'nothing else')


def test_exclusive_queue_deleted_when_connection_closes(url):
    with Broker(url) as b:
        c1, ch1 = b.channel()
        q = ch1.queue_declare('', exclusive=True).method.queue
        c1.close()
        c2, ch2 = b.channel()

        def gone():
            try:
                ch = c2.channel()
                ch.queue_declare(q, passive=True)
                ch.close()
                return False
            except ChannelClosedByBroker as e:
                if e.reply_code != 404:
                    fail('passive declare: expected 404, got %s %s'
                         % (e.reply_code, e.reply_text))
                return True
        wait_until(gone, c2, what='exclusive queue %s to be deleted' % q)
