"""A pika publisher as an application writes one for a cluster (issue 15, point 4).

BlockingConnection gets the list of the three nodes' ports as connection parameters, each with
its connection_attempts and retry_delay: that is pika's own retry, and the only one used (pika
makes connection_attempts rounds over the list, retry_delay apart: 10 rounds 1 s apart cover a
failover of a few seconds; 5 rounds 0.5 s apart, about 2 s, did not). Every
message is published on a confirm channel (confirm_delivery), so basic_publish returns once the
broker confirmed it. A lost connection is re-opened with the same list and the unconfirmed
message sent again (at least once).

argv: comma-separated ports, queue name, message count, id prefix
stdout: "C <id>" per confirmed message, "E <error>" per lost connection, "DONE <n>" at the end.
"""

import sys
import time

import pika
from pika.exceptions import AMQPError

ports = [int(p) for p in sys.argv[1].split(',')]
queue = sys.argv[2]
count = int(sys.argv[3])
prefix = sys.argv[4]

credentials = pika.PlainCredentials('guest', 'guest')
params = [
    pika.ConnectionParameters(
        host='127.0.0.1',
        port=port,
        credentials=credentials,
        connection_attempts=10,
        retry_delay=1.0,
        socket_timeout=3,
    )
    for port in ports
]


def open_channel():
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue=queue, durable=True)
    node = connection._impl.server_properties.get('node', b'?')
    if isinstance(node, bytes):
        node = node.decode()
    print('CONNECTED %s %.3f' % (node, time.time()), flush=True)
    return connection, channel


connection, channel = open_channel()
seq = 1
while seq <= count:
    msg_id = '%s-%d' % (prefix, seq)
    try:
        channel.basic_publish(
            exchange='',
            routing_key=queue,
            body=msg_id.encode(),
            properties=pika.BasicProperties(delivery_mode=2, message_id=msg_id),
        )
        print('C %s %.3f' % (msg_id, time.time()), flush=True)
        seq += 1
        if seq % 50 == 0:
            time.sleep(0.02)  # a steady stream rather than a burst
    except AMQPError as err:
        print('E %s: %s %.3f' % (type(err).__name__, err, time.time()), flush=True)
        try:
            connection.close()
        except Exception:
            pass
        try:
            connection, channel = open_channel()
        except AMQPError as again:
            print('GAVE UP %s: %r %.3f' % (type(again).__name__, again, time.time()), flush=True)
            sys.exit(3)

connection.close()
print('DONE %d' % count, flush=True)
