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

/**
 * A reply text that fits a shortstr: RabbitMQ cuts longer ones to 252 bytes and adds
 * "..."; we cut on a character boundary so the text stays valid UTF-8.
 */
export function replyText(text: string): string {
  if (Buffer.byteLength(text) <= 255) return text;
  let cut = text.slice(0, 252);
  while (Buffer.byteLength(cut) > 252) cut = cut.slice(0, -1);
  return cut + '...';
}
