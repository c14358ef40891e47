import { AmqpError } from '../protocol/errors';
import { UNEXPECTED_FRAME } from '../protocol/constants';
import { frameSnippet } from '../protocol/frame-snippet';

/**
 * A frame that has no place where the connection stands (a channel frame before
 * connection.open, a heartbeat on a channel, content on channel 0): 505, quoting the
 * frame as RabbitMQ does.
 */
export function unexpectedFrame(type: number, payload: Buffer): AmqpError {
  return new AmqpError(UNEXPECTED_FRAME, frameSnippet(type, payload));
}
