"""Error cases: reply codes and texts exactly as RabbitMQ 3.10.8 sends them.

Recorded texts (NAME/VHOST substituted):
  404 NOT_FOUND - no queue 'NAME' in vhost 'VHOST'
  404 NOT_FOUND - no exchange 'NAME' in vhost 'VHOST'
  406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'NAME' in vhost 'VHOST': received 'true' but current is 'false'
  406 PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'NAME' in vhost 'VHOST': received 'false' but current is 'true'
  406 PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'NAME' in vhost 'VHOST': received '20' but current is '10'
  406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'NAME' in vhost 'VHOST': received 'fanout' but current is 'direct'
  406 PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'NAME' in vhost 'VHOST': received 'true' but current is 'false'
  403 ACCESS_REFUSED - exchange name 'amq.NAME' contains reserved prefix 'amq.*'
  403 ACCESS_REFUSED - queue name 'amq.NAME' contains reserved prefix 'amq.*'
  403 ACCESS_REFUSED - operation not permitted on the default exchange
  403 ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost 'VHOST' not allowed
  406 PRECONDITION_FAILED - unknown delivery tag N
  406 PRECONDITION_FAILED - queue 'NAME' in vhost 'VHOST' not empty
  406 PRECONDITION_FAILED - queue 'NAME' in vhost 'VHOST' in use
  406 PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'
  connection 403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.
  connection 530 NOT_ALLOWED - vhost NAME not found
"""

import pika

from support import (Broker, ProbableAccessDeniedError,
                     ProbableAuthenticationError, channel_error, eq, fail,
                     get_all, message_count, parse_connection_failure,
                     wait_message_count)


def no_queue(name, vhost):
    return "NOT_FOUND - no queue '%s' in vhost '%s'" % (name, vhost)


def no_exchange(name, vhost):
    return "NOT_FOUND - no exchange '%s' in vhost '%s'" % (name, vhost)


def inequivalent(arg, kind, name, vhost, received, current):
    return ("PRECONDITION_FAILED - inequivalent arg '%s' for %s '%s' in vhost '%s': "
            "received '%s' but current is '%s'" % (arg, kind, name, vhost, received, current))


# -- 404 -------------------------------------------------------------------

def test_passive_declare_missing_queue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.name('missing')
        with channel_error(ch, 404, no_queue(q, b.vhost)):
            ch.queue_declare(q, passive=True)


def test_passive_declare_missing_exchange(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.name('missing')
        with channel_error(ch, 404, no_exchange(ex, b.vhost)):
            ch.exchange_declare(ex, 'direct', passive=True)


def test_publish_to_missing_exchange_closes_channel(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.name('missing')
        with channel_error(ch, 404, no_exchange(ex, b.vhost)):
            ch.basic_publish(ex, 'rk', b'x')
        assert conn.is_open, 'a channel error must not close the connection'


def test_publish_default_exchange_to_missing_queue_is_dropped(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ch.basic_publish('', b.name('missing'), b'x')
        ch.basic_qos(prefetch_count=0)  # round trip: still open
        assert ch.is_open, 'unroutable publish must not close the channel'


def test_bind_missing_queue_or_exchange(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.name('missing_q')
        with channel_error(ch, 404, no_queue(q, b.vhost)):
            ch.queue_bind(q, 'amq.direct', 'k')
        ch = conn.channel()
        real = b.queue(ch, 'real')
        ex = b.name('missing_x')
        with channel_error(ch, 404, no_exchange(ex, b.vhost)):
            ch.queue_bind(real, ex, 'k')


def test_consume_missing_queue(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.name('missing')
        with channel_error(ch, 404, no_queue(q, b.vhost)):
            ch.basic_consume(q, lambda *a: None)


def test_delete_missing_queue_and_exchange_is_ok(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        eq(ch.queue_delete(b.name('missing')).method.message_count, 0,
           'delete-ok message_count for a missing queue')
        ch.exchange_delete(b.name('missing'))
        assert ch.is_open, 'channel open after deleting missing entities'


# -- 406 inequivalent ------------------------------------------------------

def test_redeclare_queue_different_durable(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q', durable=False)
        ch2 = conn.channel()
        with channel_error(ch2, 406, inequivalent('durable', 'queue', q, b.vhost,
                                                  'true', 'false')):
            ch2.queue_declare(q, durable=True)


def test_redeclare_queue_different_auto_delete(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q', auto_delete=True)
        ch2 = conn.channel()
        with channel_error(ch2, 406, inequivalent('auto_delete', 'queue', q, b.vhost,
                                                  'false', 'true')):
            ch2.queue_declare(q, auto_delete=False)


def test_redeclare_queue_different_arguments(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q', arguments={'x-max-length': 10})
        ch2 = conn.channel()
        with channel_error(ch2, 406, inequivalent('x-max-length', 'queue', q, b.vhost,
                                                  '20', '10')):
            ch2.queue_declare(q, arguments={'x-max-length': 20})


def test_redeclare_exchange_different_type_or_durable(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ex = b.exchange(ch, 'x', 'direct', durable=False)
        ch2 = conn.channel()
        with channel_error(ch2, 406, inequivalent('type', 'exchange', ex, b.vhost,
                                                  'fanout', 'direct')):
            ch2.exchange_declare(ex, 'fanout')
        ch3 = conn.channel()
        with channel_error(ch3, 406, inequivalent('durable', 'exchange', ex, b.vhost,
                                                  'true', 'false')):
            ch3.exchange_declare(ex, 'direct', durable=True)


# -- 403 -------------------------------------------------------------------

def test_declare_exchange_amq_prefix(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        name = 'amq.' + b.name('x')
        with channel_error(ch, 403, "ACCESS_REFUSED - exchange name '%s' contains "
                                    "reserved prefix 'amq.*'" % name):
            ch.exchange_declare(name, 'direct')
        # ... but (passively or identically) declaring a predefined one is fine
        ch = conn.channel()
        ch.exchange_declare('amq.direct', 'direct', durable=True)
        ch.exchange_declare('amq.topic', 'topic', passive=True)


def test_declare_queue_amq_prefix(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        name = 'amq.' + b.name('q')
        with channel_error(ch, 403, "ACCESS_REFUSED - queue name '%s' contains "
                                    "reserved prefix 'amq.*'" % name):
            ch.queue_declare(name)


def test_default_exchange_bind_unbind_delete(url):
    with Broker(url) as b:
        text = 'ACCESS_REFUSED - operation not permitted on the default exchange'
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        with channel_error(ch, 403, text):
            ch.queue_bind(q, '', 'k')
        ch = conn.channel()
        with channel_error(ch, 403, text):
            ch.queue_unbind(q, '', q)
        ch = conn.channel()
        with channel_error(ch, 403, text):
            ch.exchange_delete('')


def test_delete_system_exchange(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        with channel_error(ch, 403, "ACCESS_REFUSED - deletion of system exchange "
                                    "'amq.direct' in vhost '%s' not allowed" % b.vhost):
            ch.exchange_delete('amq.direct')


# -- acks ------------------------------------------------------------------

def test_ack_unknown_delivery_tag(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - unknown delivery tag 1'):
            ch.basic_ack(1)


def test_double_ack(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        ch.basic_publish('', q, b'x')
        method, _, _ = ch.basic_get(q, auto_ack=False)
        eq(method.delivery_tag, 1, 'first delivery tag on a channel')
        ch.basic_ack(1)
        with channel_error(ch, 406, 'PRECONDITION_FAILED - unknown delivery tag 1'):
            ch.basic_ack(1)


def test_nack_reject_unknown_delivery_tag(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - unknown delivery tag 3'):
            ch.basic_nack(3)
        ch = conn.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - unknown delivery tag 5'):
            ch.basic_reject(5)
        ch = conn.channel()
        with channel_error(ch, 406, 'PRECONDITION_FAILED - unknown delivery tag 7'):
            ch.basic_ack(7, multiple=True)


def test_ack_multiple_zero_with_nothing_outstanding(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        ch.basic_ack(0, multiple=True)
        ch.basic_qos(prefetch_count=0)
        assert ch.is_open, 'basic.ack(0, multiple) with nothing outstanding is allowed'


# -- queue.delete / purge / get -----------------------------------------

def test_queue_delete_if_empty(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        ch.basic_publish('', q, b'x')
        wait_message_count(ch, q, 1)
        with channel_error(ch, 406, "PRECONDITION_FAILED - queue '%s' in vhost '%s' "
                                    "not empty" % (q, b.vhost)):
            ch.queue_delete(q, if_empty=True)
        ch = conn.channel()
        eq(message_count(ch, q), 1, 'queue still there with its message')
        get_all(ch, q)
        eq(ch.queue_delete(q, if_empty=True).method.message_count, 0,
           'if_empty delete of an empty queue')


def test_queue_delete_if_unused(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        cch = conn.channel()
        tag = cch.basic_consume(q, lambda *a: None)
        ch2 = conn.channel()
        with channel_error(ch2, 406, "PRECONDITION_FAILED - queue '%s' in vhost '%s' "
                                     "in use" % (q, b.vhost)):
            ch2.queue_delete(q, if_unused=True)
        cch.basic_cancel(tag)
        ch3 = conn.channel()
        ch3.basic_publish('', q, b'a')
        ch3.basic_publish('', q, b'b')
        wait_message_count(ch3, q, 2)
        eq(ch3.queue_delete(q, if_unused=True).method.message_count, 2,
           'delete-ok message_count')


def test_basic_get_empty_returns_none(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        eq(ch.basic_get(q), (None, None, None), 'basic.get on an empty queue')
        eq(ch.basic_get(q, auto_ack=True), (None, None, None), 'again, auto-ack')


def test_purge_returns_message_count(url):
    with Broker(url) as b:
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        for i in range(3):
            ch.basic_publish('', q, b'%d' % i)
        wait_message_count(ch, q, 3)
        eq(ch.queue_purge(q).method.message_count, 3, 'purge-ok message_count')
        eq(message_count(ch, q), 0, 'queue empty after purge')
        eq(ch.queue_purge(q).method.message_count, 0, 'purging an empty queue')


# -- user_id ---------------------------------------------------------------

def test_user_id_must_match_authenticated_user(url):
    with Broker(url) as b:
        user = b.params.credentials.username
        conn, ch = b.channel()
        q = b.queue(ch, 'q')
        ch.basic_publish('', q, b'ok', pika.BasicProperties(user_id=user))
        method, props, body = ch.basic_get(q, auto_ack=True)
        eq((body, props.user_id), (b'ok', user), 'message with matching user_id')
        with channel_error(ch, 406, "PRECONDITION_FAILED - user_id property set to "
                                    "'bob' but authenticated user was '%s'" % user):
            ch.basic_publish('', q, b'spoofed', pika.BasicProperties(user_id='bob'))
        ch = conn.channel()
        eq(message_count(ch, q), 0, 'spoofed message was not enqueued')


# -- channel isolation -----------------------------------------------------

def test_channel_error_closes_only_that_channel(url):
    with Broker(url) as b:
        conn, good = b.channel()
        q = b.queue(good, 'q')
        bad = conn.channel()
        with channel_error(bad, 404, no_queue(b.name('missing'), b.vhost)):
            bad.queue_declare(b.name('missing'), passive=True)
        assert bad.is_closed, 'failed channel is closed'
        assert conn.is_open, 'connection stays open'
        good.basic_publish('', q, b'still works')
        eq(good.basic_get(q, auto_ack=True)[2], b'still works', 'other channel works')
        fresh = conn.channel()
        eq(fresh.queue_declare(q, passive=True).method.queue, q,
           'a new channel on the same connection works')


# -- connection-level --------------------------------------------------------

def test_wrong_password_refused(url):
    with Broker(url) as b:
        bad_url = b.url_with(password='definitely-not-' + b.tag)
        try:
            b.connect(bad_url)
        except ProbableAuthenticationError as e:
            code, text = parse_connection_failure(e)
            eq(code, 403, 'connection.close reply code (%s)' % text)
            prefix = 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN'
            if not text.startswith(prefix):
                fail('connection.close text: expected to start with %r, got %r'
                     % (prefix, text))
        except Exception as e:
            fail('expected ProbableAuthenticationError, got %s: %s'
                 % (type(e).__name__, e))
        else:
            fail('connection with a wrong password was accepted')


def test_unknown_vhost_not_allowed(url):
    with Broker(url) as b:
        vhost = 'no-such-vhost-' + b.tag
        try:
            b.connect(b.url_with(vhost=vhost))
        except ProbableAccessDeniedError as e:
            code, text = parse_connection_failure(e)
            eq((code, text), (530, 'NOT_ALLOWED - vhost %s not found' % vhost),
               'connection.close code and text')
        except Exception as e:
            fail('expected ProbableAccessDeniedError, got %s: %s'
                 % (type(e).__name__, e))
        else:
            fail('connection to unknown vhost %r was accepted' % vhost)
