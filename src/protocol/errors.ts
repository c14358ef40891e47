import { REPLY_NAMES } from './constants';

/**
 * An AMQP exception: thrown anywhere below the channel/connection and turned into a
 * channel.close or connection.close there. The text follows RabbitMQ's
 * "NAME - detail" form because clients and people grep for it.
 */
export class AmqpError extends Error {
  constructor(
    readonly code: number,
    detail: string,
    public classId = 0,
    public methodId = 0,
  ) {
    super(`${REPLY_NAMES[code] ?? 'ERROR'} - ${detail}`);
  }
}
