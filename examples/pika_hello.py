# Publish "hello" to a queue and read it back, with pika (pip install pika, or apt-get install python3-pika).
import os

import pika

url = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2F')
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()

channel.queue_declare(queue='hello')
channel.basic_publish(exchange='', routing_key='hello', body=b'Hello World!')

method, properties, body = channel.basic_get(queue='hello', auto_ack=True)
print(body.decode())  # Hello World!
connection.close()
