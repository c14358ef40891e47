"""Shared helpers for the conformance cases (plain Python + pika 1.2).

Every case is a function ``test_xxx(url)``.  A case normally opens a
``Broker`` context, which gives it unique names (so that runs can overlap on
one broker), tracks the connections it opens and deletes the queues and
exchanges it declared when the case ends, whatever the outcome.
"""

import contextlib
import re
import sys
import time
import urllib.parse
import uuid

import pika
from pika.exceptions import (  # noqa: F401  (re-exported for the cases)
    AMQPConnectionError,
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
    UnroutableError,
)

# How long a case waits for something that should happen "soon".
WAIT = 5.0
# How long a case waits to convince itself that something does NOT happen.
QUIET = 0.3


def fail(msg):
    raise AssertionError(msg)


def eq(actual, expected, what):
    if actual != expected:
        fail('%s: expected %r, got %r' % (what, expected, actual))


class Delivery(object):
    __slots__ = ('method', 'properties', 'body')

    def __init__(self, method, properties, body):
        self.method = method
        self.properties = properties
        self.body = body

    def __repr__(self):
        return 'Delivery(%r, tag=%s, redelivered=%s)' % (
            self.body, self.method.delivery_tag, self.method.redelivered)


class Broker(object):
    """Per-case context: unique names, tracked connections, cleanup."""

    def __init__(self, url):
        self.url = url
        self.params = pika.URLParameters(url)
        self.vhost = self.params.virtual_host
        self.tag = uuid.uuid4().hex[:12]
        self._conns = []
        self._queues = []
        self._exchanges = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- names -----------------------------------------------------------
    def name(self, base):
        """A name unique to this case invocation."""
        return 'conformance.%s.%s' % (base, self.tag)

    # -- connections -----------------------------------------------------
    def connect(self, url=None):
        params = pika.URLParameters(url or self.url)
        params.connection_attempts = 1
        params.socket_timeout = WAIT
        params.blocked_connection_timeout = WAIT * 2
        conn = pika.BlockingConnection(params)
        self._conns.append(conn)
        return conn

    def channel(self):
        conn = self.connect()
        return conn, conn.channel()

    def url_with(self, password=None, vhost=None):
        """The broker URL with another password and/or vhost."""
        parts = urllib.parse.urlsplit(self.url)
        netloc = parts.netloc
        if password is not None:
            userinfo, _, hostport = netloc.rpartition('@')
            user = userinfo.split(':', 1)[0] if userinfo else 'guest'
            netloc = '%s:%s@%s' % (user, urllib.parse.quote(password, safe=''),
                                   hostport)
        path = parts.path
        if vhost is not None:
            path = '/' + urllib.parse.quote(vhost, safe='')
        return urllib.parse.urlunsplit((parts.scheme, netloc, path,
                                        parts.query, parts.fragment))

    # -- entities --------------------------------------------------------
    def queue(self, ch, base, **kwargs):
        """Declare a uniquely named queue that is deleted at cleanup."""
        name = self.name(base)
        ok = ch.queue_declare(name, **kwargs)
        eq(ok.method.queue, name, 'queue.declare-ok queue name')
        self._queues.append(name)
        return name

    def exchange(self, ch, base, exchange_type, **kwargs):
        """Declare a uniquely named exchange that is deleted at cleanup."""
        name = self.name(base)
        ch.exchange_declare(name, exchange_type, **kwargs)
        self._exchanges.append(name)
        return name

    def forget_queue(self, name):
        if name in self._queues:
            self._queues.remove(name)

    def track_queue(self, name):
        self._queues.append(name)

    def cleanup(self):
        for conn in self._conns:
            try:
                if conn.is_open:
                    conn.close()
            except Exception:
                pass
        self._conns = []
        if not (self._queues or self._exchanges):
            return
        try:
            conn = pika.BlockingConnection(pika.URLParameters(self.url))
        except Exception as e:
            sys.stderr.write('cleanup: cannot connect: %r\n' % (e,))
            return
        try:
            ch = conn.channel()
            for kind, names in (('queue', self._queues),
                                ('exchange', self._exchanges)):
                for name in names:
                    try:
                        if not ch.is_open:
                            ch = conn.channel()
                        if kind == 'queue':
                            ch.queue_delete(name)
                        else:
                            ch.exchange_delete(name)
                    except Exception as e:
                        sys.stderr.write('cleanup: %s %s: %r\n' % (kind, name, e))
            self._queues = []
            self._exchanges = []
        finally:
            try:
                conn.close()
            except Exception:
                pass


# -- waiting ---------------------------------------------------------------

def pump(conns, seconds):
    """Run the I/O loops of the given connections for about `seconds`."""
    if not isinstance(conns, (list, tuple)):
        conns = [conns]
    deadline = time.monotonic() + seconds
    while True:
        for c in conns:
            c.process_data_events(time_limit=0)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def wait_until(pred, conns=(), timeout=WAIT, what='condition'):
    """Pump the connections until pred() is true; fail after `timeout`."""
    if not isinstance(conns, (list, tuple)):
        conns = [conns]
    deadline = time.monotonic() + timeout
    while True:
        for c in conns:
            c.process_data_events(time_limit=0)
        if pred():
            return
        if time.monotonic() >= deadline:
            fail('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(0.005)


def message_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def consumer_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.consumer_count


def wait_message_count(ch, queue, n, timeout=WAIT):
    last = [None]

    def ok():
        last[0] = message_count(ch, queue)
        return last[0] == n
    try:
        wait_until(ok, timeout=timeout, what='%d message(s) in %s' % (n, queue))
    except AssertionError:
        fail('queue %s: expected message_count %d, still %r after %.1fs'
             % (queue, n, last[0], timeout))


def get_all(ch, queue, limit=1000):
    """basic.get (auto-ack) until the queue is empty; returns the bodies."""
    out = []
    for _ in range(limit):
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)
    fail('queue %s did not drain' % queue)


class Collector(object):
    """basic.consume that records deliveries (optionally acking each)."""

    def __init__(self, ch, queue, auto_ack=True, ack=False, **kwargs):
        self.ch = ch
        self.deliveries = []
        self.ack = ack
        self.consumer_tag = ch.basic_consume(queue, self._on, auto_ack=auto_ack,
                                             **kwargs)

    def _on(self, ch, method, properties, body):
        self.deliveries.append(Delivery(method, properties, body))
        if self.ack:
            ch.basic_ack(method.delivery_tag)

    @property
    def bodies(self):
        return [d.body for d in self.deliveries]

    def __len__(self):
        return len(self.deliveries)

    def wait(self, n, conns, timeout=WAIT):
        """Wait for at least n deliveries."""
        try:
            wait_until(lambda: len(self.deliveries) >= n, conns, timeout,
                       what='%d deliveries' % n)
        except AssertionError:
            fail('expected %d deliveries within %.1fs, got %d: %r'
                 % (n, timeout, len(self.deliveries), self.bodies))
        return self.bodies


# -- expected errors -------------------------------------------------------

def check_reply(kind, code, text, exp_code, exp_text=None, exp_prefix=None):
    if code != exp_code:
        fail('expected %s.close %s, got %s %r' % (kind, exp_code, code, text))
    if exp_text is not None and text != exp_text:
        fail('%s.close %s: expected text %r, got %r' % (kind, code, exp_text, text))
    if exp_prefix is not None and not (text or '').startswith(exp_prefix):
        fail('%s.close %s: expected text starting %r, got %r'
             % (kind, code, exp_prefix, text))


@contextlib.contextmanager
def channel_error(ch, code, text=None, prefix=None):
    """The block must make the broker close `ch` with `code` (and text).

    Asynchronous methods (basic.publish, basic.ack...) do not wait for an
    answer, so after the block a synchronous no-op (basic.qos) is sent: the
    broker ignores it on a closing channel and the pending channel.close
    surfaces as ChannelClosedByBroker.
    """
    try:
        yield
        ch.basic_qos(prefetch_count=0)
    except ChannelClosedByBroker as e:
        check_reply('channel', e.reply_code, e.reply_text, code, text, prefix)
    else:
        fail('expected channel.close %s%s, but the channel stayed open'
             % (code, ' (%s)' % (text or prefix) if (text or prefix) else ''))
    if not ch.is_closed:
        fail('channel should be closed after channel.close')


_CLOSED_RE = re.compile(r"\((\d+)\) (['\"])(.*)\2")


def parse_connection_failure(exc):
    """(code, text) of a Probable*Error wrapping a broker connection.close."""
    s = ' '.join(str(a) for a in exc.args)
    m = _CLOSED_RE.search(s)
    if not m:
        return None, s
    return int(m.group(1)), m.group(3)
