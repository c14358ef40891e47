"""A celery application on a Leveret cluster (issue 15, point 4): worker and client both get the
three nodes as a failover list of broker URLs (kombu's "url1;url2;url3", round robin) and use
celery's normal reconnection. Results go to a directory (file:// backend), not through the
broker, so a task's completion is known whatever happens to the broker's transient queues.

Settings an application that must not lose tasks uses: publisher confirms (confirm_publish),
persistent task messages (celery's default), acks_late so that a task in progress when the
broker fails over is delivered again (at least once), and a publish retry policy long enough to
cover a failover (celery's default one gives up after about 0.6 s).

Environment: LEVERET_CLUSTER_PORTS (comma list), LEVERET_CELERY_PREFIX (queue and exchange
names), LEVERET_CELERY_RESULTS (directory).

Worker: /usr/bin/python3 -m celery -A celery_failover worker --pool=threads -c 4 ...
Client: /usr/bin/python3 celery_failover.py <before> <after>: sends <before> tasks, prints
"WAITING", reads a line from stdin (the test kills the leader, then writes it), sends <after>
tasks at once (during the failover), then waits for every result; prints "SENT <tag>" and
"DONE <tag>" lines and "ALL DONE" or "MISSING <tags>".
"""

import os
import sys
import time

from celery import Celery
from celery.signals import worker_ready

PREFIX = os.environ.get('LEVERET_CELERY_PREFIX', 'leveret-cluster-celery')
PORTS = [p for p in os.environ.get('LEVERET_CLUSTER_PORTS', '5672').split(',') if p]
RESULTS = os.environ.get('LEVERET_CELERY_RESULTS', '/tmp/leveret-celery-results')
BROKER = ';'.join('pyamqp://guest:guest@127.0.0.1:%s//' % p for p in PORTS)

app = Celery('leveret_cluster', broker=BROKER, backend='file://' + RESULTS)
app.conf.update(
    task_default_queue=PREFIX,
    task_default_exchange=PREFIX,
    task_default_routing_key=PREFIX,
    control_exchange=PREFIX,
    event_exchange=PREFIX + '.ev',
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    broker_transport_options={'confirm_publish': True},
    broker_connection_timeout=3,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # With the threads pool and acks_late, this celery (5.2.6) takes a new batch of up to
    # prefetch (concurrency x multiplier) tasks only every 2 s or so, against RabbitMQ 3.10 as
    # against Leveret (40 tasks: 18.8 s and 18.3 s with a multiplier of 1): a larger multiplier
    # keeps the test short.
    worker_prefetch_multiplier=10,
    task_publish_retry_policy={'max_retries': 40, 'interval_start': 0, 'interval_step': 0.25, 'interval_max': 0.5},
    worker_hijack_root_logger=False,
)

READY_MARKER = 'LEVERET-CELERY-WORKER-READY'


@worker_ready.connect
def _announce_ready(sender=None, **_kwargs):
    print(READY_MARKER, flush=True)


@app.task(name='record')
def record(tag):
    # long enough that tasks sent just before the kill are still queued or running during it
    time.sleep(0.2)
    # one line per execution (a task redelivered after the failover runs twice): the test counts them
    with open(os.path.join(RESULTS, 'executions.log'), 'a') as f:
        f.write('%s %.3f\n' % (tag, time.time()))
    return tag


def main():
    before, after = int(sys.argv[1]), int(sys.argv[2])
    results = []

    def send(tag):
        results.append((tag, record.apply_async(args=[tag], retry=True)))
        print('SENT %s %.3f' % (tag, time.time()), flush=True)

    for i in range(before):
        send('before-%d' % i)
    print('WAITING', flush=True)
    sys.stdin.readline()
    for i in range(after):
        send('after-%d' % i)
    missing = []
    deadline = time.time() + 90
    for tag, res in results:
        try:
            value = res.get(timeout=max(1, deadline - time.time()), interval=0.1)
            print('DONE %s %s' % (tag, 'ok' if value == tag else 'WRONG %r' % (value,)), flush=True)
            if value != tag:
                missing.append(tag)
        except Exception as err:
            print('FAILED %s %s: %s' % (tag, type(err).__name__, err), flush=True)
            missing.append(tag)
    print('MISSING %s' % ' '.join(missing) if missing else 'ALL DONE', flush=True)
    sys.exit(1 if missing else 0)


if __name__ == '__main__':
    main()
