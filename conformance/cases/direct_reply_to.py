"""RPC with direct reply-to (amq.rabbitmq.reply-to), a RabbitMQ extension.

Texts recorded from RabbitMQ 3.10.8:
  consume amq.rabbitmq.reply-to with acks  -> 406 'PRECONDITION_FAILED - reply consumer cannot acknowledge'
  publish with reply_to=amq.rabbitmq.reply-to without consuming it
                                           -> 406 'PRECONDITION_FAILED - fast reply consumer does not exist'
"""

import threading

import pika

from support import Broker, channel_error, eq, wait_until

PSEUDO = 'amq.rabbitmq.reply-to'


def test_direct_reply_to_rpc(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        rpc_queue = b.queue(ch, 'drt_rpc')

        sconn, sch = b.channel()
        seen = []

        def on_request(chan, method, props, body):
            seen.append(props.reply_to)
            chan.basic_publish('', props.reply_to, body.upper(),
                               pika.BasicProperties(correlation_id=props.correlation_id))
            chan.basic_ack(method.delivery_tag)
        sch.basic_consume(rpc_queue, on_request, auto_ack=False)
        stop = threading.Event()
        errors = []

        def serve():
            try:
                while not stop.is_set():
                    sconn.process_data_events(time_limit=0.05)
            except Exception as e:
                errors.append(e)
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            replies = []
            ch.basic_consume(PSEUDO, lambda c, m, p, body: replies.append((m, p, body)),
                             auto_ack=True)
            for i, word in enumerate(('ping', 'pong')):
                ch.basic_publish('', rpc_queue, word.encode(),
                                 pika.BasicProperties(reply_to=PSEUDO,
                                                      correlation_id='c%d' % i))
            wait_until(lambda: len(replies) == 2 or errors, conn,
                       what='direct reply-to responses')
            assert not errors, 'server thread failed: %r' % errors
            eq([(p.correlation_id, body) for _, p, body in replies],
               [('c0', b'PING'), ('c1', b'PONG')], 'replies')
            for r in seen:
                assert r.startswith(PSEUDO + '.'), \
                    'server saw reply_to %r, expected it to start with %r' % (r, PSEUDO + '.')
            eq(replies[0][0].routing_key, seen[0], 'reply routing key')
            eq(replies[0][0].exchange, '', 'reply exchange')
        finally:
            stop.set()
            t.join(5)


def test_direct_reply_to_requires_no_ack(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - reply consumer cannot acknowledge'):
            ch.basic_consume(PSEUDO, lambda *a: None, auto_ack=False)


def test_direct_reply_to_publish_without_consumer(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'drt_req')
        with channel_error(ch, 406, 'PRECONDITION_FAILED - fast reply consumer does not exist'):
            ch.basic_publish('', q, b'x', pika.BasicProperties(reply_to=PSEUDO))
