"""Tutorial 6: RPC - reply_to + correlation_id, a server thread answering."""

import threading
import uuid

import pika

from support import Broker, eq, wait_until


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class RpcServer(threading.Thread):
    """Consumes the request queue on its own connection and answers."""

    def __init__(self, broker, queue):
        threading.Thread.__init__(self, daemon=True)
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=1)
        self.ch.basic_consume(queue, self.on_request, auto_ack=False)
        self.stop = threading.Event()
        self.error = None
        self.seen_reply_to = []

    def on_request(self, ch, method, props, body):
        self.seen_reply_to.append(props.reply_to)
        answer = str(fib(int(body))).encode()
        ch.basic_publish('', props.reply_to, answer,
                         pika.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(method.delivery_tag)

    def run(self):
        try:
            while not self.stop.is_set():
                self.conn.process_data_events(time_limit=0.05)
        except Exception as e:  # reported by the test thread
            self.error = e
        finally:
            try:
                self.conn.close()
            except Exception:
                pass

    def shutdown(self):
        self.stop.set()
        self.join(5)


def test_rpc_reply_to_correlation_id(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        rpc_queue = b.queue(ch, 'rpc_queue')
        server = RpcServer(b, rpc_queue)
        server.start()
        try:
            callback_queue = ch.queue_declare('', exclusive=True).method.queue
            responses = {}

            def on_response(chan, method, props, body):
                responses[props.correlation_id] = body
            ch.basic_consume(callback_queue, on_response, auto_ack=True)

            requests = {}
            for n in (0, 1, 10, 30):
                corr = str(uuid.uuid4())
                requests[corr] = n
                ch.basic_publish('', rpc_queue, str(n).encode(),
                                 pika.BasicProperties(reply_to=callback_queue,
                                                      correlation_id=corr))
            wait_until(lambda: len(responses) == len(requests) or server.error,
                       conn, what='RPC responses')
            assert server.error is None, 'server thread failed: %r' % server.error
            for corr, n in requests.items():
                eq(responses.get(corr), str(fib(n)).encode(),
                   'response to fib(%d) (correlation_id %s)' % (n, corr))
            eq(set(server.seen_reply_to), {callback_queue}, 'reply_to seen by server')
        finally:
            server.shutdown()
