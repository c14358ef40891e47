"""Transactions: tx.select / tx.commit / tx.rollback."""

from support import (Broker, QUIET, channel_error, eq, get_all, message_count,
                     pump, wait_message_count)


def test_tx_commit_publishes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'tx')
        observer = conn.channel()
        tx = conn.channel()
        tx.tx_select()
        tx.basic_publish('', q, b'a')
        tx.basic_publish('', q, b'b')
        pump(conn, QUIET)
        eq(message_count(observer, q), 0, 'uncommitted publishes are not enqueued')
        tx.tx_commit()
        wait_message_count(observer, q, 2)
        eq(get_all(observer, q), [b'a', b'b'], 'committed messages')


def test_tx_rollback_discards_publishes(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'tx')
        tx = conn.channel()
        tx.tx_select()
        tx.basic_publish('', q, b'rolled back 1')
        tx.basic_publish('', q, b'rolled back 2')
        tx.tx_rollback()
        pump(conn, QUIET)
        eq(message_count(ch, q), 0, 'rolled back publishes are not delivered')
        # the channel stays transactional
        tx.basic_publish('', q, b'kept')
        tx.tx_commit()
        wait_message_count(ch, q, 1)
        eq(get_all(ch, q), [b'kept'], 'queue after rollback then commit')


def test_tx_acks_are_transactional(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'tx')
        ch.basic_publish('', q, b'x')
        wait_message_count(ch, q, 1)
        tx = conn.channel()
        tx.tx_select()
        method, _, body = tx.basic_get(q, auto_ack=False)
        eq(body, b'x', 'body')
        tx.basic_ack(method.delivery_tag)
        tx.tx_rollback()  # the ack is undone: message still unacked
        tx.close()        # ... so closing the channel requeues it
        wait_message_count(ch, q, 1)
        tx = conn.channel()
        tx.tx_select()
        method, _, body = tx.basic_get(q, auto_ack=False)
        eq(method.redelivered, True, 'redelivered after rolled-back ack')
        tx.basic_ack(method.delivery_tag)
        tx.tx_commit()
        tx.close()
        pump(conn, QUIET)
        eq(message_count(ch, q), 0, 'committed ack removes the message')


def test_tx_commit_without_select(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - channel is not transactional'):
            ch.tx_commit()
        ch2 = conn.channel()
        with channel_error(ch2, 406, 'PRECONDITION_FAILED - channel is not transactional'):
            ch2.tx_rollback()
