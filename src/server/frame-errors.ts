import { AmqpError } from '../protocol/errors';
import { UNEXPECTED_FRAME } from '../protocol/constants';

/**
 * A frame that has no place where the connection stands (a channel frame before
 * connection.open, a heartbeat on a channel): 505, with the frame type and its first
 * 16 octets printed as RabbitMQ prints an Erlang binary.
 */
export function unexpectedFrame(type: number, channel: number, payload: Buffer): AmqpError {
  const octets = [...payload.subarray(0, 16)].join(',');
  return new AmqpError(UNEXPECTED_FRAME, `type ${type}, first 16 octets = <<${octets}>>`);
}
