/**
 * Errors the management API answers with, in RabbitMQ's shape: a status code and a JSON
 * body {"error": ..., "reason": ...}. Handlers throw these; anything else thrown becomes a
 * 500 without details (never a stack trace).
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly error: string,
    /** RabbitMQ sends a string, or an Erlang term rendered as a JSON list */
    readonly reason: unknown,
    readonly headers: Record<string, string> = {},
    /** RabbitMQ sends some refusals (no credentials at all) with an empty body */
    readonly emptyBody = false,
  ) {
    super(`${status} ${error}: ${typeof reason === 'string' ? reason : JSON.stringify(reason)}`);
  }

  get body(): { error: string; reason: unknown } | undefined {
    return this.emptyBody ? undefined : { error: this.error, reason: this.reason };
  }
}

/** What RabbitMQ's basic-auth challenge says. */
export const CHALLENGE = { 'www-authenticate': 'Basic realm="RabbitMQ Management"' };

export const notFound = (): HttpError => new HttpError(404, 'Object Not Found', 'Not Found');

export const badRequest = (reason: unknown): HttpError => new HttpError(400, 'bad_request', reason);

/** Wrong or missing credentials: "not_authorized", with the challenge. */
export const loginFailed = (): HttpError => new HttpError(401, 'not_authorized', 'Login failed', CHALLENGE);

/** The user is known but may not do this: RabbitMQ spells this one "not_authorised". */
export const notAuthorised = (reason: string): HttpError => new HttpError(401, 'not_authorised', reason);
