import type { IncomingHttpHeaders } from 'node:http';
import type { User, UserStore } from '../auth/users';
import { CHALLENGE, HttpError, badRequest, loginFailed, notAuthorised } from './errors';

/**
 * Who may use the management API, by RabbitMQ's user tags: any of these tags lets a user in
 * (what each may then see differs); a user without them may still use AMQP.
 */
const MANAGEMENT_TAGS = new Set(['administrator', 'monitoring', 'policymaker', 'management']);

/** What a resource asks of its caller. */
export type Access = 'management' | 'administrator';

export const isAdministrator = (u: User): boolean => u.tags.includes('administrator');

/** Who may change policies (RabbitMQ's policymaker tag; administrators may do everything). */
export const isPolicymaker = (u: User): boolean => isAdministrator(u) || u.tags.includes('policymaker');

/**
 * Checks HTTP basic credentials against the broker's users, then the tags the resource
 * needs, in RabbitMQ's order and with its answers (all 401; a malformed header 400).
 */
export function authorize(headers: IncomingHttpHeaders, remoteAddress: string | undefined, users: UserStore, access: Access): User {
  const header = headers.authorization;
  // No credentials at all: RabbitMQ answers with the challenge and an empty body.
  if (header === undefined || header === '') throw new HttpError(401, 'not_authorized', 'Login failed', CHALLENGE, true);
  const creds = parseBasic(header);
  if (creds === null) throw loginFailed();
  const user = users.authenticate(creds.username, creds.password);
  if (user === null) throw loginFailed();
  if (!users.allowedFrom(user, remoteAddress)) throw notAuthorised('User can only log in via localhost');
  if (!user.tags.some((t) => MANAGEMENT_TAGS.has(t))) throw notAuthorised('Not management user');
  if (access === 'administrator' && !isAdministrator(user)) throw notAuthorised('Not administrator user');
  return user;
}

/** "Basic base64(user:password)"; other schemes are not ours (null: the login fails). */
function parseBasic(header: string): { username: string; password: string } | null {
  const m = /^basic\s+(\S*)\s*$/i.exec(header);
  if (m === null) return null;
  // Node decodes any text as base64; RabbitMQ refuses what is not base64 with a 400.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(m[1])) throw badRequest('malformed Authorization header');
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw badRequest('malformed Authorization header');
  // The password may hold colons; the user name cannot.
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
