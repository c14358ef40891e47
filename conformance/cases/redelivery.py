"""Unacked messages come back, flagged redelivered, in their original order."""

from support import (Broker, Collector, QUIET, eq, message_count, pump,
                     wait_message_count)


def _fill(ch, q, n):
    for i in range(n):
        ch.basic_publish('', q, b'm%d' % i)
    wait_message_count(ch, q, n)


def _check_second_consumer(b, q, expect_bodies):
    conn2, ch2 = b.channel()
    col = Collector(ch2, q, auto_ack=False)
    col.wait(len(expect_bodies), conn2)
    pump(conn2, QUIET)
    eq(col.bodies, expect_bodies, 'redelivered bodies, in original order')
    eq([d.method.redelivered for d in col.deliveries], [True] * len(expect_bodies),
       'redelivered flags')
    eq([d.method.delivery_tag for d in col.deliveries],
       list(range(1, len(expect_bodies) + 1)),
       'delivery tags on the new channel start at 1')
    return conn2, ch2, col


def test_redelivered_after_consumer_channel_closes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'redeliver')
        _fill(ch, q, 3)
        cch = conn.channel()
        first = Collector(cch, q, auto_ack=False)
        first.wait(3, conn)
        eq([d.method.redelivered for d in first.deliveries], [False] * 3,
           'first delivery is not redelivered')
        cch.close()
        _check_second_consumer(b, q, [b'm0', b'm1', b'm2'])


def test_redelivered_after_consumer_connection_closes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'redeliver')
        _fill(ch, q, 3)
        c1, ch1 = b.channel()
        first = Collector(ch1, q, auto_ack=False)
        first.wait(3, c1)
        c1.close()
        _check_second_consumer(b, q, [b'm0', b'm1', b'm2'])


def test_partially_acked_then_closed_keeps_order(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'redeliver')
        _fill(ch, q, 5)
        c1, ch1 = b.channel()
        ch1.basic_qos(prefetch_count=3)
        first = Collector(ch1, q, auto_ack=False)
        first.wait(3, c1)
        pump(c1, QUIET)
        eq(first.bodies, [b'm0', b'm1', b'm2'], 'first consumer window')
        ch1.basic_ack(first.deliveries[1].method.delivery_tag)  # ack m1 only
        first.wait(4, c1)
        c1.close()
        # m0, m2, m3 were unacked and come back ahead of the never-delivered m4
        conn2, ch2 = b.channel()
        col = Collector(ch2, q, auto_ack=True)
        col.wait(4, conn2)
        pump(conn2, QUIET)
        eq(col.bodies, [b'm0', b'm2', b'm3', b'm4'], 'bodies after requeue')
        eq([d.method.redelivered for d in col.deliveries], [True, True, True, False],
           'redelivered flags')


def test_basic_get_unacked_redelivered(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'redeliver')
        _fill(ch, q, 2)
        gch = conn.channel()
        m0 = gch.basic_get(q, auto_ack=False)
        eq((m0[2], m0[0].redelivered, m0[0].message_count), (b'm0', False, 1),
           'first get (body, redelivered, message_count)')
        gch.close()
        wait_message_count(ch, q, 2)
        m = ch.basic_get(q, auto_ack=True)
        eq((m[2], m[0].redelivered), (b'm0', True), 'get after requeue')
        m = ch.basic_get(q, auto_ack=True)
        eq((m[2], m[0].redelivered), (b'm1', False), 'untouched message')


def test_nack_and_reject_requeue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'redeliver')
        _fill(ch, q, 3)
        m0 = ch.basic_get(q)
        m1 = ch.basic_get(q)
        m2 = ch.basic_get(q)
        ch.basic_reject(m1[0].delivery_tag, requeue=True)
        ch.basic_nack(m2[0].delivery_tag, requeue=False)  # dropped (no DLX)
        ch.basic_nack(m0[0].delivery_tag, requeue=True)
        wait_message_count(ch, q, 2)
        got = [ch.basic_get(q, auto_ack=True) for _ in range(2)]
        eq([g[2] for g in got], [b'm0', b'm1'], 'requeued messages in queue order')
        eq([g[0].redelivered for g in got], [True, True], 'redelivered flags')
        eq(message_count(ch, q), 0, 'rejected-without-requeue message is gone')


def test_basic_recover_requeue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'recover')
        _fill(ch, q, 2)
        col = Collector(ch, q, auto_ack=False)
        col.wait(2, conn)
        ch.basic_recover(requeue=True)
        col.wait(4, conn)
        pump(conn, QUIET)
        eq(col.bodies, [b'm0', b'm1', b'm0', b'm1'], 'bodies after basic.recover')
        eq([d.method.redelivered for d in col.deliveries], [False, False, True, True],
           'redelivered flags after basic.recover')
        for d in col.deliveries[2:]:
            ch.basic_ack(d.method.delivery_tag)
        pump(conn, 0.05)
        eq(message_count(ch, q), 0, 'all acked')
