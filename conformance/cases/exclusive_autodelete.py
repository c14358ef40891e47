"""Exclusive and auto-delete queues.

Text recorded from RabbitMQ 3.10.8 for any use of another connection's
exclusive queue (passive declare, consume, delete, purge):
  405 "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'NAME'
       in vhost '/'. It could be originally declared on another connection or
       the exclusive property value does not match that of the original
       declaration."
"""

from support import (Broker, ChannelClosedByBroker, channel_error, eq, fail,
                     wait_message_count, wait_until)


def locked_prefix(name, vhost):
    return ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
            "'%s' in vhost '%s'" % (name, vhost))


def test_exclusive_queue_locked_for_other_connections(url):
    with Broker(url) as b:
        owner, och = b.channel()
        q = och.queue_declare('', exclusive=True).method.queue
        named = b.queue(och, 'excl', exclusive=True)
        other = b.connect()
        for queue in (q, named):
            ch = other.channel()
            with channel_error(ch, 405, prefix=locked_prefix(queue, b.vhost)):
                ch.queue_declare(queue, passive=True)
            ch = other.channel()
            with channel_error(ch, 405, prefix=locked_prefix(queue, b.vhost)):
                ch.basic_consume(queue, lambda *a: None)
            ch = other.channel()
            with channel_error(ch, 405, prefix=locked_prefix(queue, b.vhost)):
                ch.queue_delete(queue)
            ch = other.channel()
            with channel_error(ch, 405, prefix=locked_prefix(queue, b.vhost)):
                ch.queue_purge(queue)
        ch = other.channel()
        with channel_error(ch, 405, prefix=locked_prefix(named, b.vhost)):
            ch.queue_declare(named, exclusive=True)
        # the owner's connection is unaffected, on any of its channels
        och2 = owner.channel()
        och2.basic_publish('', q, b'mine')
        # (queue.declare-ok's message_count may lag a publish, even on the
        # same channel, in RabbitMQ: poll for it)
        wait_message_count(och2, q, 1)
        eq(och2.basic_get(q, auto_ack=True)[2], b'mine',
           'owner can still use its exclusive queue')


def test_exclusive_mismatch_on_same_connection(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'shared')  # not exclusive
        ch2 = conn.channel()
        with channel_error(ch2, 405, prefix=locked_prefix(q, b.vhost)):
            ch2.queue_declare(q, exclusive=True)


def _exists(conn, q):
    ch = conn.channel()
    try:
        ch.queue_declare(q, passive=True)
    except ChannelClosedByBroker as e:
        if e.reply_code != 404:
            fail('passive declare of %s: expected ok or 404, got %s %r'
                 % (q, e.reply_code, e.reply_text))
        return False
    ch.close()
    return True


def test_auto_delete_queue_removed_after_last_consumer_cancels(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'autodel', auto_delete=True)
        # never consumed: stays
        observer = b.connect()
        assert _exists(observer, q), 'auto-delete queue without consumers must stay'
        c1, ch1 = b.channel()
        c2, ch2 = b.channel()
        t1 = ch1.basic_consume(q, lambda *a: None, auto_ack=True)
        t2 = ch2.basic_consume(q, lambda *a: None, auto_ack=True)
        eq(ch.queue_declare(q, passive=True).method.consumer_count, 2, 'consumer_count')
        ch1.basic_cancel(t1)
        assert _exists(observer, q), 'queue deleted while a consumer remains'
        ch2.basic_cancel(t2)
        wait_until(lambda: not _exists(observer, q), observer,
                   what='auto-delete queue to go after its last consumer cancels')
        ch3 = observer.channel()
        with channel_error(ch3, 404, "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, b.vhost)):
            ch3.queue_declare(q, passive=True)


def test_auto_delete_queue_removed_when_consumer_channel_closes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'autodel', auto_delete=True)
        c1, ch1 = b.channel()
        ch1.basic_consume(q, lambda *a: None, auto_ack=True)
        c1.close()
        observer = b.connect()
        wait_until(lambda: not _exists(observer, q), observer,
                   what='auto-delete queue to go when its consumer connection closes')
