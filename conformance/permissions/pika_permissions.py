"""Permission shapes as a pika application meets them. Usage:
    pika_permissions.py URL_TEMPLATE
URL_TEMPLATE has {user} in it (amqp://{user}:pw@127.0.0.1:PORT/%2F); the users
ro (read '.*' only), wo (write '.*' only), co (configure '.*' only) and rx (everything
on names starting with "rx-") must exist with password "pw". Prints one line per check
and exits 1 if any failed."""
import sys
import pika

TEMPLATE = sys.argv[1]
failures = []


def connect(user):
    return pika.BlockingConnection(pika.URLParameters(TEMPLATE.format(user=user)))


def refused(user, action, expect_text):
    """Runs action(channel) and expects the channel closed with 403 and the given text."""
    conn = connect(user)
    ch = conn.channel()
    try:
        action(ch)
        outcome = 'allowed'
    except pika.exceptions.ChannelClosedByBroker as e:
        outcome = f'{e.reply_code} {e.reply_text}'
    conn.close()
    want = f'403 {expect_text}'
    ok = outcome == want
    print(('PASS' if ok else 'FAIL'), user, want if ok else f'wanted {want!r}, got {outcome!r}')
    if not ok:
        failures.append(user)


def allowed(user, action, what):
    conn = connect(user)
    ch = conn.channel()
    try:
        action(ch)
        print('PASS', user, what)
    except pika.exceptions.AMQPError as e:
        print('FAIL', user, what, repr(e))
        failures.append(user)
    conn.close()


def refused_text(kind, name, user):
    return f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user '{user}'"


# configure-only: may declare, may not publish or consume
allowed('co', lambda ch: ch.queue_declare('co-q'), 'declares a queue')
refused('co', lambda ch: ch.basic_publish('amq.direct', 'k', b'x') or ch.queue_declare('co-q', passive=True) or ch.basic_get('co-q'),
        refused_text('exchange', 'amq.direct', 'co'))
# write-only: may publish, may not declare or get
allowed('wo', lambda ch: ch.basic_publish('', 'co-q', b'from wo'), 'publishes to the default exchange')
refused('wo', lambda ch: ch.queue_declare('wo-q'), refused_text('queue', 'wo-q', 'wo'))
refused('wo', lambda ch: ch.basic_get('co-q'), refused_text('queue', 'co-q', 'wo'))
# read-only: may get, may not declare or publish
allowed('ro', lambda ch: ch.basic_get('co-q', auto_ack=True), 'gets from a queue')
refused('ro', lambda ch: ch.queue_declare('ro-q'), refused_text('queue', 'ro-q', 'ro'))
refused('ro', lambda ch: ch.basic_publish('', 'co-q', b'x') or ch.queue_declare('co-q', passive=True) or ch.basic_get('co-q'),
        refused_text('exchange', 'amq.default', 'ro'))
# regex-limited: everything on rx-*, nothing else
allowed('rx', lambda ch: ch.queue_declare('rx-q') and ch.basic_publish('', 'rx-q', b'y'), 'declares and publishes on rx-*')
refused('rx', lambda ch: ch.queue_declare('other-q'), refused_text('queue', 'other-q', 'rx'))

sys.exit(1 if failures else 0)
