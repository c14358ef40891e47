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

/** AMQP reply codes the answers depend on (the spec's, as the model throws them). */
const ACCESS_REFUSED = 403;
const NOT_FOUND = 404;
const INTERNAL_ERROR = 541;
const NAMES: Record<number, string> = { 403: 'ACCESS_REFUSED', 404: 'NOT_FOUND', 405: 'RESOURCE_LOCKED', 406: 'PRECONDITION_FAILED' };

/**
 * An error the model threw with an AMQP reply code: its message is "NAME - text" (the
 * http layer does not import the protocol's error class; the shape is what counts).
 */
interface ModelError {
  code: number;
  message: string;
}

function isModelError(err: unknown): err is ModelError {
  return err instanceof Error && typeof (err as Partial<ModelError>).code === 'number' && /^[A-Z_]+ - /.test(err.message);
}

/** Runs a model call, turning its AMQP error into RabbitMQ's HTTP answer. */
export function viaModel<T>(route: ErrorRoute, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (isModelError(err)) throw httpErrorOf(err, route);
    throw err;
  }
}

/** A publish refused by the API itself, in the words an AMQP channel would use. */
export const publishRefusal = (code: 403 | 406, text: string): HttpError => new HttpError(400, 'bad_request', `${code} ${NAMES[code]} - ${text}`);

function httpErrorOf(err: ModelError, route: ErrorRoute): HttpError {
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
