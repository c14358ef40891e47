"""Runs the celery and kombu checks by hand against one broker.

    /usr/bin/python3 conformance/celery/run.py --url amqp://guest:guest@127.0.0.1:5672

Starts a celery worker (threads pool) for a unique prefix, waits until it is
ready, runs driver.py and kombu_check.py, stops the worker and deletes the
celery queue and exchanges. Exits 1 when anything failed. (test/celery.test.ts
does the same from vitest.) --trace FILE records the AMQP methods sent by
every process (see amqp_trace.py).
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable or '/usr/bin/python3'
READY_MARKER = 'LEVERET-CELERY-WORKER-READY'


def worker_command(prefix):
    return [PYTHON, '-m', 'celery', '-A', 'tasks', 'worker', '--pool=threads', '--concurrency=4',
            '-l', 'warning', '-n', prefix + '@%h']


def celery_names(prefix):
    """Queues and exchanges a worker for `prefix` leaves behind (the rest auto-delete)."""
    return {
        'queues': [prefix],
        'exchanges': [prefix, prefix + '.pidbox', 'reply.' + prefix + '.pidbox', prefix + '.ev'],
    }


def cleanup(url, prefix):
    os.environ['LEVERET_URL'] = url
    sys.path.insert(0, HERE)
    from kombu import Connection
    from kombu_check import broker_url
    names = celery_names(prefix)
    with Connection(broker_url(), connect_timeout=10) as conn:
        for kind, delete in (('queues', 'queue_delete'), ('exchanges', 'exchange_delete')):
            for name in names[kind]:
                ch = conn.channel()
                try:
                    getattr(ch, delete)(name)
                except Exception:
                    pass
                try:
                    ch.close()
                except Exception:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--url', default=os.environ.get('LEVERET_URL', 'amqp://guest:guest@127.0.0.1:5672'))
    ap.add_argument('--prefix', default='leveret-celery-%d-%s' % (os.getpid(), uuid.uuid4().hex[:6]))
    ap.add_argument('--ready-timeout', type=float, default=45.0)
    ap.add_argument('--timeout', type=float, default=120.0, help='per script')
    ap.add_argument('--trace', help='append the AMQP methods sent to this file')
    args = ap.parse_args()

    env = dict(os.environ, LEVERET_URL=args.url, LEVERET_CELERY_PREFIX=args.prefix,
               PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1')
    if args.trace:
        env['LEVERET_AMQP_TRACE'] = os.path.abspath(args.trace)

    worker = subprocess.Popen(worker_command(args.prefix), cwd=HERE, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    lines = []
    ready = threading.Event()

    def pump():
        for line in worker.stdout:
            lines.append(line)
            if READY_MARKER in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    failed = 0
    try:
        deadline = time.time() + args.ready_timeout
        while not ready.is_set() and worker.poll() is None and time.time() < deadline:
            ready.wait(0.1)
        if not ready.is_set():
            print('FAIL worker not ready (exit code %r):\n%s' % (worker.poll(), ''.join(lines)), flush=True)
            return 1
        for script in ('driver.py', 'kombu_check.py'):
            print('== %s' % script, flush=True)
            try:
                rc = subprocess.run([PYTHON, script], cwd=HERE, env=env, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                print('FAIL %s timed out after %.0f s' % (script, args.timeout), flush=True)
                rc = 1
            if rc != 0:
                failed += 1
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        try:
            cleanup(args.url, args.prefix)
        except Exception as exc:
            print('cleanup failed: %r' % (exc,), file=sys.stderr)
    if failed:
        print('== worker output:\n%s' % ''.join(lines), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
