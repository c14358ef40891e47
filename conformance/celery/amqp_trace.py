"""Optional wire trace of what py-amqp (celery's and kombu's pyamqp transport) sends.

Set LEVERET_AMQP_TRACE=/path/to/file and every process that imports this module
(and calls install_from_env()) appends one line per AMQP method it sends, plus
the channel.close / connection.close / basic.return it receives, e.g.

    1234 ch1 > queue.declare queue='x' durable=True ... arguments={'x-max-priority': 10}

It patches amqp.abstract_channel.AbstractChannel; nothing changes when the
variable is unset. Debugging aid only: the checks never depend on it.
"""

import os
import threading
import time

_FIELDS = {
    (10, 11): ('connection.start-ok', ('client_properties', 'mechanism', 'response', 'locale')),
    (10, 31): ('connection.tune-ok', ('channel_max', 'frame_max', 'heartbeat')),
    (10, 40): ('connection.open', ('virtual_host', 'capabilities', 'insist')),
    (10, 50): ('connection.close', ('reply_code', 'reply_text', 'class_id', 'method_id')),
    (10, 51): ('connection.close-ok', ()),
    (20, 10): ('channel.open', ('out_of_band',)),
    (20, 20): ('channel.flow', ('active',)),
    (20, 40): ('channel.close', ('reply_code', 'reply_text', 'class_id', 'method_id')),
    (20, 41): ('channel.close-ok', ()),
    (40, 10): ('exchange.declare', ('ticket', 'exchange', 'type', 'passive', 'durable',
                                    'auto_delete', 'internal', 'nowait', 'arguments')),
    (40, 20): ('exchange.delete', ('ticket', 'exchange', 'if_unused', 'nowait')),
    (40, 30): ('exchange.bind', ('ticket', 'destination', 'source', 'routing_key', 'nowait', 'arguments')),
    (40, 40): ('exchange.unbind', ('ticket', 'destination', 'source', 'routing_key', 'nowait', 'arguments')),
    (50, 10): ('queue.declare', ('ticket', 'queue', 'passive', 'durable', 'exclusive',
                                 'auto_delete', 'nowait', 'arguments')),
    (50, 20): ('queue.bind', ('ticket', 'queue', 'exchange', 'routing_key', 'nowait', 'arguments')),
    (50, 30): ('queue.purge', ('ticket', 'queue', 'nowait')),
    (50, 40): ('queue.delete', ('ticket', 'queue', 'if_unused', 'if_empty', 'nowait')),
    (50, 50): ('queue.unbind', ('ticket', 'queue', 'exchange', 'routing_key', 'arguments')),
    (60, 10): ('basic.qos', ('prefetch_size', 'prefetch_count', 'global')),
    (60, 20): ('basic.consume', ('ticket', 'queue', 'consumer_tag', 'no_local', 'no_ack',
                                 'exclusive', 'nowait', 'arguments')),
    (60, 30): ('basic.cancel', ('consumer_tag', 'nowait')),
    (60, 40): ('basic.publish', ('ticket', 'exchange', 'routing_key', 'mandatory', 'immediate')),
    (60, 50): ('basic.return', ('reply_code', 'reply_text', 'exchange', 'routing_key')),
    (60, 70): ('basic.get', ('ticket', 'queue', 'no_ack')),
    (60, 80): ('basic.ack', ('delivery_tag', 'multiple')),
    (60, 90): ('basic.reject', ('delivery_tag', 'requeue')),
    (60, 100): ('basic.recover-async', ('requeue',)),
    (60, 110): ('basic.recover', ('requeue',)),
    (60, 120): ('basic.nack', ('delivery_tag', 'multiple', 'requeue')),
    (85, 10): ('confirm.select', ('nowait',)),
    (90, 10): ('tx.select', ()),
}

# Received methods worth logging (errors and returns).
_INCOMING = {(10, 50), (20, 40), (60, 50)}

# Content properties worth showing on basic.publish.
_PROPS = ('content_type', 'content_encoding', 'delivery_mode', 'priority', 'expiration',
          'correlation_id', 'reply_to', 'message_id', 'type')

_lock = threading.Lock()
_installed = False


def _describe(sig, args, content=None):
    name, fields = _FIELDS.get(sig, ('method%r' % (sig,), ()))
    parts = []
    args = list(args or ())
    for i, value in enumerate(args):
        key = fields[i] if i < len(fields) else 'arg%d' % i
        if key in ('ticket',):
            continue
        if key == 'response':
            value = '<hidden>'
        if key == 'client_properties' and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in ('product', 'version', 'capabilities')}
        parts.append('%s=%r' % (key, value))
    if content is not None:
        props = getattr(content, 'properties', {}) or {}
        shown = {k: props[k] for k in _PROPS if props.get(k) is not None}
        headers = props.get('application_headers') or props.get('headers')
        if headers:
            shown['header_keys'] = sorted(headers)
        body = getattr(content, 'body', b'')
        parts.append('props=%r body_bytes=%d' % (shown, len(body) if body is not None else 0))
    return name, ' '.join(parts)


def install(path):
    """Patch py-amqp so that methods are appended to `path`."""
    global _installed
    if _installed:
        return
    from amqp.abstract_channel import AbstractChannel
    from amqp.serialization import loads

    pid = os.getpid()

    def write(line):
        with _lock:
            with open(path, 'a') as fh:
                fh.write('%.3f %d %s\n' % (time.time(), pid, line))

    orig_send = AbstractChannel.send_method
    orig_dispatch = AbstractChannel.dispatch_method

    def send_method(self, sig, format=None, args=None, content=None, *rest, **kw):
        try:
            name, text = _describe(sig, args, content)
            write('ch%s > %s %s' % (self.channel_id, name, text))
        except Exception as exc:  # never break the client
            write('ch%s > %r (trace error %r)' % (self.channel_id, sig, exc))
        return orig_send(self, sig, format, args, content, *rest, **kw)

    def dispatch_method(self, method_sig, payload, content):
        if method_sig in _INCOMING:
            try:
                amqp_method = self._METHODS.get(method_sig)
                decoded = loads(amqp_method.args, payload, 4)[0] if amqp_method and amqp_method.args else []
                name, text = _describe(method_sig, decoded)
                write('ch%s < %s %s' % (self.channel_id, name, text))
            except Exception as exc:
                write('ch%s < %r (trace error %r)' % (self.channel_id, method_sig, exc))
        return orig_dispatch(self, method_sig, payload, content)

    AbstractChannel.send_method = send_method
    AbstractChannel.dispatch_method = dispatch_method
    _installed = True


def install_from_env():
    path = os.environ.get('LEVERET_AMQP_TRACE')
    if path:
        install(path)
