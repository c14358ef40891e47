import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED, INTERNAL_ERROR, NOT_FOUND } from '../protocol/constants';
import { HttpError } from './errors';

/**
 * How RabbitMQ's management API reports an AMQP error from the model, which depends on
 * how it reached the model:
 * - `direct` (declare, delete, purge, bind: called straight into the broker): the text
 *   alone; not found is 404, access refused 401 "Access refused.", the rest 400.
 * - `get` (basic.get on an internal channel): the close text "NAME - text"; not found 404,
 *   access refused 401, the rest 400 with the code in front ("405 RESOURCE_LOCKED - ...").
 * - `publish`: always 400 with "CODE NAME - text".
 */
export type ErrorRoute = 'direct' | 'get' | 'publish';

/** Runs a model call, turning its AMQP error into RabbitMQ's HTTP answer. */
export function viaModel<T>(route: ErrorRoute, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof AmqpError) throw httpErrorOf(err, route);
    throw err;
  }
}

function httpErrorOf(err: AmqpError, route: ErrorRoute): HttpError {
  // The AmqpError's message is "NAME - detail".
  const detail = err.message.replace(/^[A-Z_]+ - /, '');
  // A store that refused the change: the server's fault, not the request's.
  if (err.code === INTERNAL_ERROR) return new HttpError(500, 'internal_server_error', detail);
  switch (route) {
    case 'direct':
      if (err.code === NOT_FOUND) return new HttpError(404, 'not_found', detail);
      if (err.code === ACCESS_REFUSED) return new HttpError(401, 'not_authorised', 'Access refused.');
      return new HttpError(400, 'bad_request', detail);
    case 'get':
      if (err.code === NOT_FOUND) return new HttpError(404, 'not_found', err.message);
      if (err.code === ACCESS_REFUSED) return new HttpError(401, 'not_authorised', err.message);
      return new HttpError(400, 'bad_request', `${err.code} ${err.message}`);
    case 'publish':
      return new HttpError(400, 'bad_request', `${err.code} ${err.message}`);
  }
}
