"""Sends tasks to a running celery worker (see tasks.py) and checks the results.

Starts nothing itself: a worker for the same LEVERET_URL / LEVERET_CELERY_PREFIX
must already be running. Prints one line per check and a final
"N passed, M failed" line; exits 1 when a check failed.

    cd conformance/celery
    LEVERET_URL=amqp://guest:guest@127.0.0.1:5672 /usr/bin/python3 driver.py
"""

import sys
import time
import traceback

from celery import chain
from celery.result import ResultSet

from tasks import PREFIX, add, app, fail, send_sms, slow, stamp

TIMEOUT = 20.0
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def add_2_3():
    r = add.delay(2, 3)
    value = r.get(timeout=TIMEOUT)
    assert value == 5, 'add(2, 3) returned %r' % (value,)
    assert r.state == 'SUCCESS', 'state %r' % (r.state,)
    return 'add(2, 3) = 5'


@check
def send_sms_result():
    r = send_sms.delay('+44 7700 900123', '4711')
    value = r.get(timeout=TIMEOUT)
    expected = send_sms.run('+44 7700 900123', '4711')
    assert value == expected, 'got %r, expected %r' % (value, expected)
    return 'receipt %r' % (value,)


@check
def fifty_in_parallel():
    results = ResultSet([add.delay(i, i * 10) for i in range(50)])
    # ResultSet.get() collects them as they come (join_native). Calling
    # .get() on each AsyncResult in turn works too, but with the rpc://
    # backend every result that arrived while waiting for another one then
    # costs a 1 s drain timeout (client side, RabbitMQ alike).
    values = results.get(timeout=TIMEOUT)
    assert len(values) == 50, '%d results' % len(values)
    wrong = [(i, v) for i, v in enumerate(values) if v != i * 11]
    assert not wrong, 'wrong results (index, value): %r' % (wrong[:10],)
    return '50 results correct'


@check
def chain_of_tasks():
    # The worker publishes the next step itself.
    value = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async().get(timeout=TIMEOUT)
    assert value == 10, 'chain returned %r' % (value,)
    return '((1 + 2) + 3) + 4 = 10'


@check
def countdown_runs_late():
    sent = time.time()
    r = stamp.apply_async(args=('countdown',), countdown=2)
    value = r.get(timeout=TIMEOUT)
    delay = value['ran_at'] - sent
    assert value['tag'] == 'countdown', value
    # celery turns the ETA into a monotonic deadline: allow 10 ms of clock slack.
    assert delay >= 2.0 - 0.01, 'ran only %.3f s after it was sent' % delay
    assert delay < 12.0, 'ran %.3f s after it was sent (expected about 2 s)' % delay
    return 'ran %.2f s after send' % delay


@check
def failing_task_reported():
    r = fail.delay('expected failure')
    try:
        value = r.get(timeout=TIMEOUT)
    except ValueError as exc:
        assert 'expected failure' in str(exc), 'wrong message %r' % (str(exc),)
    else:
        raise AssertionError('get() returned %r instead of raising ValueError' % (value,))
    assert r.state == 'FAILURE', 'state %r' % (r.state,)
    assert r.failed(), 'failed() is False'
    return 'ValueError raised by get(), state FAILURE'


@check
def prefetch_lets_fast_task_pass_slow_one():
    # The worker's prefetch window (basic.qos) must let a second message
    # through while the first one is still running (unacknowledged).
    started = time.time()
    slow_r = slow.delay(2.5, 'slow-done')
    fast_r = add.delay(20, 22)
    assert fast_r.get(timeout=TIMEOUT) == 42
    fast_at = time.time() - started
    assert slow_r.get(timeout=TIMEOUT) == 'slow-done'
    slow_at = time.time() - started
    assert fast_at < 2.0, 'fast task finished only after %.2f s (slow one took %.2f s)' % (fast_at, slow_at)
    return 'fast task done after %.2f s, slow one after %.2f s' % (fast_at, slow_at)


@check
def eta_tasks_do_not_block_worker():
    # The worker holds ETA/countdown tasks unacknowledged until they are due
    # and raises its basic.qos prefetch_count by one for each (16 -> 17 ...),
    # so more of them than the prefetch window (concurrency 4 x multiplier 4)
    # must not starve a task sent after them. kombu sends that basic.qos with
    # global=True to RabbitMQ >= 3.3 and global=False to any other product.
    n = 24
    sent = time.time()
    later = ResultSet([stamp.apply_async(args=('eta-%d' % i,), countdown=4) for i in range(n)])
    fast = add.delay(7, 8)
    value = fast.get(timeout=TIMEOUT)
    fast_at = time.time() - sent
    assert value == 15, 'add(7, 8) returned %r' % (value,)
    stamps = later.get(timeout=TIMEOUT)
    early = [s['tag'] for s in stamps if s['ran_at'] - sent < 4.0 - 0.01]
    assert not early, '%d countdown tasks ran early: %r' % (len(early), early[:5])
    assert fast_at < 3.0, ('a task sent after %d countdown=4 tasks finished only after %.2f s: the '
                           'prefetch window did not grow past them' % (n, fast_at))
    return 'fast task done after %.2f s behind %d held countdown tasks' % (fast_at, n)


@check
def control_ping():
    replies = app.control.ping(timeout=5.0, limit=1)
    ours = [name for reply in replies for name in reply if name.startswith(PREFIX + '@')]
    assert ours, 'no ping reply from a %s@ worker: %r' % (PREFIX, replies)
    return 'pong from %s' % ', '.join(ours)


def main():
    passed = failed = 0
    for fn in CHECKS:
        t0 = time.time()
        try:
            detail = fn()
        except Exception as exc:
            failed += 1
            print('FAIL %s (%.2fs): %s: %s' % (fn.__name__, time.time() - t0, type(exc).__name__, exc), flush=True)
            if not isinstance(exc, AssertionError):
                traceback.print_exc(limit=6)
                sys.stderr.flush()
        else:
            passed += 1
            print('PASS %s (%.2fs): %s' % (fn.__name__, time.time() - t0, detail), flush=True)
    print('%d passed, %d failed' % (passed, failed), flush=True)
    try:
        app.close()
    except Exception:
        pass
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
