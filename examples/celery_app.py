# A celery application on Leveret: tasks over AMQP (py-amqp), results over RPC replies.
# Start a worker in this directory:  python3 -m celery -A celery_app worker --pool=threads -l info
import os

from celery import Celery

app = Celery(
    'hello',
    broker=os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672//'),
    backend='rpc://',
)


@app.task
def add(x, y):
    return x + y
