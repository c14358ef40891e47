import type { FastifyInstance } from 'fastify';
import { QueueTargets } from '../broker/queue-targets';
import type { ManagementContext } from './context';
import type { QueueEntry } from '../broker/queue-entry';
import { Message } from '../broker/message';
import { senderSelected } from '../broker/sender-selected';
import { expirationError } from '../broker/expiration';
import { field } from './body';
import { badRequest } from './errors';
import { resource } from './resource';
import { viaModel } from './amqp-status';
import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED, PRECONDITION_FAILED } from '../protocol/constants';
import { HTTP_OWNER, exchangeFromPath, writableVhost } from './object-access';
import { requireKeys } from './object-body';
import { PROPERTY_NAMES, gotMessageJson } from './views/message';
import type { BasicProperties } from '../protocol/generated';

type Obj = Record<string, unknown>;

const ACK_MODES = ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'] as const;
type AckMode = (typeof ACK_MODES)[number];

const INT_PROPERTIES = new Set(['delivery_mode', 'priority', 'timestamp']);
const OCTET_PROPERTIES = new Set(['delivery_mode', 'priority']);

/**
 * POST /api/exchanges/{vhost}/{name}/publish and POST /api/queues/{vhost}/{name}/get, as
 * RabbitMQ 3.10's management API: a publish routes exactly as one over AMQP does and is
 * counted like one; a get is basic.get, settled as the ackmode says.
 */
export function registerPublishGetRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const broker = ctx.broker;
  const users = broker.users;

  resource(app, users, '/api/exchanges/:vhost/:name/publish', 'management', {
    POST: ({ user, params, body }) => {
      const v = writableVhost(broker, user, params.vhost);
      const b = body();
      requireKeys(b, ['properties', 'routing_key', 'payload', 'payload_encoding']);
      const props = parseProperties(field(b, 'properties'));
      const routingKey = field(b, 'routing_key');
      if (typeof routingKey !== 'string') throw badRequest(['not_string', 'routing_key']);
      const payload = parsePayload(field(b, 'payload'), field(b, 'payload_encoding'));
      const name = exchangeFromPath(params.name);
      // Refused as a channel would refuse the publish: the answer is "CODE NAME - text".
      const routed = viaModel('publish', () => {
        broker.permissions.check(user, v.name, 'write', 'exchange', name);
        const ex = v.getExchange(name);
        if (ex.internal) throw new AmqpError(ACCESS_REFUSED, `cannot publish to internal exchange '${ex.name}' in vhost '${v.name}'`);
        if (ex.type === 'topic') broker.permissions.checkTopic(user, v.name, 'write', ex.name, routingKey);
        if (props.expiration !== undefined) {
          const bad = expirationError(props.expiration);
          if (bad !== null) throw new AmqpError(PRECONDITION_FAILED, `invalid expiration '${props.expiration}': ${bad}`);
        }
        if (props.userId !== undefined && props.userId !== user.name) {
          throw new AmqpError(PRECONDITION_FAILED, `user_id property set to '${props.userId}' but authenticated user was '${user.name}'`);
        }
        let msg = Message.fromProperties(ex.name, routingKey, props, payload);
        const cc = props.headers === undefined ? null : senderSelected(msg);
        if (cc !== null) msg = cc.message;
        // Counted as a channel's publish would be: in the vhost's (and so the node's) totals and the exchange's.
        v.retiredChannels.publish++;
        ex.publishIn++;
        const queues = new QueueTargets();
        v.route(ex, msg, queues, cc === null ? null : cc.keys);
        if (queues.size === 0) {
          v.retiredChannels.dropUnroutable++;
          return false;
        }
        v.counters.routed++;
        ex.publishOut++;
        for (const q of queues) q.enqueue(msg);
        return true;
      });
      return { status: 200, json: { routed } };
    },
  });

  resource(app, users, '/api/queues/:vhost/:name/get', 'management', {
    POST: ({ user, params, body }) => {
      const v = writableVhost(broker, user, params.vhost);
      const b = body();
      requireKeys(b, ['count', 'ackmode', 'encoding']);
      const count = integerField(field(b, 'count'), 'count');
      const ackmode = field(b, 'ackmode');
      if (!ACK_MODES.includes(ackmode as AckMode)) throw badRequest(`ackmode must be one of ${ACK_MODES.join(', ')}`);
      const encoding = field(b, 'encoding');
      if (encoding !== 'auto' && encoding !== 'base64') throw badRequest('Unsupported encoding. Please use auto or base64.');
      const truncateRaw = field(b, 'truncate');
      const truncate = truncateRaw === undefined ? null : integerField(truncateRaw, 'truncate');
      if (truncate !== null && truncate < 0) throw badRequest(['not_int', 'truncate']);
      const q = viaModel('get', () => {
        broker.permissions.check(user, v.name, 'read', 'queue', params.name);
        return v.getQueue(params.name, HTTP_OWNER);
      });
      const mode = ackmode as AckMode;
      const noAck = mode === 'ack_requeue_false';
      const taken: QueueEntry[] = [];
      const out: Obj[] = [];
      for (let i = 0; i < count; i++) {
        const e = q.get(noAck);
        if (e === undefined) {
          v.retiredChannels.getEmpty++;
          break;
        }
        if (noAck) v.retiredChannels.getNoAck++;
        else v.retiredChannels.get++;
        if (e.redelivered) {
          v.retiredChannels.redeliver++;
          q.counters.redelivered++;
        }
        out.push(gotMessageJson(e, q.messageCount, encoding, truncate));
        if (!noAck) taken.push(e);
      }
      // Settled after all are taken, so that a requeued message is not got twice.
      if (mode === 'ack_requeue_true' || mode === 'reject_requeue_true') q.requeue(taken);
      else if (mode === 'reject_requeue_false') for (const e of taken) q.settle(e, true);
      return { status: 200, json: out };
    },
  });
}

/** RabbitMQ's JSON properties (its names) as AMQP basic properties. */
function parseProperties(raw: unknown): BasicProperties {
  if (Array.isArray(raw) && raw.length === 0) return {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest(['not_table', 'properties']);
  const o = raw as Obj;
  const props: Record<string, unknown> = {};
  for (const [key, name] of PROPERTY_NAMES) {
    const v = field(o, name);
    if (v === undefined) continue;
    if (name === 'headers') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw badRequest(['not_table', name]);
      props[key] = v;
    } else if (INT_PROPERTIES.has(name)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || (OCTET_PROPERTIES.has(name) && v > 255))
        throw badRequest(['not_int', name]);
      props[key] = v;
    } else {
      if (typeof v !== 'string') throw badRequest(['not_string', name]);
      if (Buffer.byteLength(v) > 255) throw badRequest(['too_long', name]);
      props[key] = v;
    }
  }
  return props;
}

function parsePayload(payload: unknown, encoding: unknown): Buffer {
  if (encoding !== 'string' && encoding !== 'base64')
    throw badRequest(['unsupported_encoding', typeof encoding === 'string' ? encoding : JSON.stringify(encoding)]);
  if (typeof payload !== 'string') throw badRequest(['not_string', 'payload']);
  if (encoding === 'string') return Buffer.from(payload, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) throw badRequest('payload is not valid base64');
  return Buffer.from(payload, 'base64');
}

/**
 * An integer as RabbitMQ reads one from a get request: a JSON number, or a string of digits
 * (rabbitmqadmin sends `"count": "1"`); other text is ["not_integer", text].
 */
function integerField(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) return Number(v);
    throw badRequest(['not_integer', v]);
  }
  throw badRequest(['not_int', key]);
}
