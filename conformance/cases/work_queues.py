"""Tutorial 2: work queues - manual ack, durability, fair dispatch."""

import pika

from support import (Broker, Collector, QUIET, eq, message_count, pump,
                     wait_message_count, wait_until)


def test_durable_queue_persistent_message_manual_ack(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'task_queue', durable=True)
        ch.basic_publish('', q, b'task 1',
                         pika.BasicProperties(delivery_mode=2))
        method, props, body = ch.basic_get(q, auto_ack=False)
        assert method is not None, 'basic.get returned get-empty'
        eq(body, b'task 1', 'body')
        eq(props.delivery_mode, 2, 'delivery_mode')
        # Unacked: not counted as ready, but not gone either.
        other = conn.channel()
        eq(message_count(other, q), 0, 'ready count while unacked')
        ch.basic_ack(method.delivery_tag)
        ch.close()  # had it not been acked, it would come back now
        pump(conn, QUIET)
        eq(message_count(other, q), 0, 'message count after ack + close')
        ok = other.queue_declare(q, durable=True, passive=True)
        eq(ok.method.queue, q, 'durable queue still declared')


def test_unacked_message_requeued_when_channel_closes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'task_queue', durable=True)
        ch.basic_publish('', q, b'task', pika.BasicProperties(delivery_mode=2))
        worker = conn.channel()
        col = Collector(worker, q, auto_ack=False)
        col.wait(1, conn)
        eq(message_count(ch, q), 0, 'ready count while delivered')
        worker.close()  # "worker dies" without acking
        wait_message_count(ch, q, 1)


def test_round_robin_dispatch(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'rr')
        c1, ch1 = b.channel()
        c2, ch2 = b.channel()
        w1 = Collector(ch1, q, auto_ack=True)
        w2 = Collector(ch2, q, auto_ack=True)
        for i in range(6):
            ch.basic_publish('', q, b'task %d' % i)
        wait_until(lambda: len(w1) + len(w2) >= 6, [c1, c2], what='6 deliveries')
        pump([c1, c2], QUIET)
        eq(len(w1) + len(w2), 6, 'total deliveries')
        eq(sorted(w1.bodies + w2.bodies), [b'task %d' % i for i in range(6)],
           'all tasks delivered once')
        eq((len(w1), len(w2)), (3, 3), 'round-robin split between two workers')


def test_fair_dispatch_prefetch_one(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'fair', durable=True)
        ca, cha = b.channel()
        cb, chb = b.channel()
        cha.basic_qos(prefetch_count=1)
        chb.basic_qos(prefetch_count=1)
        got = {'a': [], 'b': []}

        def cb_for(who):
            def on(chan, method, props, body):
                got[who].append((method.delivery_tag, body))
            return on
        cha.basic_consume(q, cb_for('a'), auto_ack=False)
        chb.basic_consume(q, cb_for('b'), auto_ack=False)
        conns = [ca, cb]
        props = pika.BasicProperties(delivery_mode=2)

        ch.basic_publish('', q, b'slow task', props)
        wait_until(lambda: len(got['a']) + len(got['b']) == 1, conns,
                   what='first delivery')
        slow = 'a' if got['a'] else 'b'
        fast = 'b' if slow == 'a' else 'a'
        slow_ch, fast_ch = (cha, chb) if slow == 'a' else (chb, cha)

        # The slow worker keeps its message unacked; everything else must go
        # to the other worker, one at a time.
        for i in range(3):
            ch.basic_publish('', q, b'quick %d' % i, props)
        for i in range(3):
            wait_until(lambda: len(got[fast]) == i + 1, conns,
                       what='quick %d delivered to the free worker' % i)
            pump(conns, 0.05)
            eq(len(got[fast]), i + 1,
               'free worker deliveries before it acked (prefetch 1)')
            fast_ch.basic_ack(got[fast][-1][0])
        pump(conns, QUIET)
        eq([m for _, m in got[fast]], [b'quick 0', b'quick 1', b'quick 2'],
           'free worker got the later tasks in order')
        eq([m for _, m in got[slow]], [b'slow task'],
           'busy worker (holding an unacked message) got nothing more')

        # Once the slow worker acks, it becomes eligible again.
        slow_ch.basic_ack(got[slow][0][0])
        ch.basic_publish('', q, b'next', props)
        wait_until(lambda: len(got['a']) + len(got['b']) == 5, conns,
                   what='delivery after ack')
        who = slow if len(got[slow]) == 2 else fast
        eq(got[who][-1][1], b'next', 'message published after the ack')
        (slow_ch if who == slow else fast_ch).basic_ack(got[who][-1][0])
        eq(message_count(ch, q), 0, 'queue drained')


def test_prefetch_count_limits_unacked(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'prefetch')
        for i in range(10):
            ch.basic_publish('', q, b'%d' % i)
        wc, wch = b.channel()
        wch.basic_qos(prefetch_count=3)
        col = Collector(wch, q, auto_ack=False)
        col.wait(3, wc)
        pump(wc, QUIET)
        eq(col.bodies, [b'0', b'1', b'2'], 'deliveries with prefetch_count=3')
        wch.basic_ack(col.deliveries[1].method.delivery_tag)
        col.wait(4, wc)
        pump(wc, QUIET)
        eq(col.bodies, [b'0', b'1', b'2', b'3'], 'one more after one ack')
        wch.basic_ack(col.deliveries[-1].method.delivery_tag, multiple=True)
        col.wait(7, wc)
        pump(wc, QUIET)
        eq(len(col), 7, 'three more after multiple ack of three')
        eq(message_count(ch, q), 3, 'remaining ready messages')
