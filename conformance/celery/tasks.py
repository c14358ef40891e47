"""A small celery application used to drive a broker end to end.

Broker:  LEVERET_URL   e.g. amqp://guest:guest@127.0.0.1:5672  (or pyamqp://.../)
         (amqp:// and amqps:// are rewritten to pyamqp:// so py-amqp is used)
Results: rpc://        (replies come back over an auto-delete queue per client)
Names:   LEVERET_CELERY_PREFIX  (default "leveret-celery"): the task queue,
         the task exchange, the control exchanges (<prefix>.pidbox,
         reply.<prefix>.pidbox) and the event exchange (<prefix>.ev) are all
         named after it, so that a run on a shared broker touches nothing else.

The worker is started with
    /usr/bin/python3 -m celery -A tasks worker --pool=threads -c 4 -l warning
in this directory; driver.py sends the tasks and checks the results.
"""

import os
import sys
import time

from celery import Celery
from celery.signals import worker_ready

import amqp_trace

amqp_trace.install_from_env()

READY_MARKER = 'LEVERET-CELERY-WORKER-READY'


def broker_url():
    url = os.environ.get('LEVERET_URL', 'amqp://guest:guest@127.0.0.1:5672')
    for scheme in ('amqp://', 'amqps://'):
        if url.startswith(scheme):
            url = 'py' + url
            break
    # kombu reads the vhost from the path; "//" (or none) is the default "/".
    rest = url.split('://', 1)[1]
    if '/' not in rest:
        url += '//'
    return url


PREFIX = os.environ.get('LEVERET_CELERY_PREFIX', 'leveret-celery')

app = Celery('leveret_tasks', broker=broker_url(), backend='rpc://')
app.conf.update(
    task_default_queue=PREFIX,
    task_default_exchange=PREFIX,
    task_default_routing_key=PREFIX,
    control_exchange=PREFIX,
    event_exchange=PREFIX + '.ev',
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    timezone='UTC',
    enable_utc=True,
    # Don't retry for ever when the broker is down or refuses us: fail visibly.
    broker_connection_max_retries=3,
    broker_connection_timeout=10,
    worker_hijack_root_logger=False,
)


@worker_ready.connect
def _announce_ready(sender=None, **_kwargs):
    # The test waits for this line (the "ready" log line is INFO, hidden at -l warning).
    print(READY_MARKER, flush=True)
    sys.stdout.flush()


@app.task
def add(a, b):
    return a + b


@app.task
def send_sms(phone, code):
    """Pretends to send an SMS; returns a deterministic receipt."""
    digits = ''.join(ch for ch in str(phone) if ch.isdigit())
    return {
        'to': phone,
        'text': 'Your code is %s' % code,
        'status': 'sent',
        'segments': 1,
        'checksum': sum(int(d) for d in digits) + sum(ord(c) for c in str(code)),
    }


@app.task
def fail(message='boom'):
    raise ValueError(message)


@app.task
def slow(seconds, value=None):
    time.sleep(float(seconds))
    return value


@app.task
def stamp(tag):
    """Returns when (wall clock) the worker ran it."""
    return {'tag': tag, 'ran_at': time.time()}
