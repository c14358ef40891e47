import type { BasicProperties } from '../protocol/generated';
import { encodeProperties } from '../protocol/properties';
import { Message } from '../broker/message';

/**
 * RabbitMQ's direct reply-to: a consumer on the pseudo-queue `amq.rabbitmq.reply-to`
 * receives, with no queue in between, whatever is published to the default exchange with
 * the address its channel's requests carried in reply_to.
 */
export const REPLY_TO_QUEUE = 'amq.rabbitmq.reply-to';
export const REPLY_TO_PREFIX = REPLY_TO_QUEUE + '.';

/**
 * A copy of the message whose reply_to names the requesting channel's address. The spread
 * is shallow: the copy shares the decoded headers table, wire types included, so they are
 * re-encoded as published.
 */
export function withReplyAddress(msg: Message, props: BasicProperties, address: string): Message {
  const raw = encodeProperties({ ...props, replyTo: address });
  return new Message(msg.exchange, msg.routingKey, raw, msg.body);
}
