import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Reader } from '../protocol/reader';
import type { User, UserStore } from '../auth/users';
import { ACCESS_REFUSED, COMMAND_INVALID, SYNTAX_ERROR } from '../protocol/constants';
import { dnValues, rfc4514, verifiedPeerCertificate } from './tls';

export const MECHANISMS = 'PLAIN AMQPLAIN';
const WITH_EXTERNAL = `${MECHANISMS} EXTERNAL`;

/**
 * connection.start's mechanisms: EXTERNAL (RabbitMQ's rabbitmq_auth_mechanism_ssl) only
 * where it can succeed, on a TLS connection whose client certificate verified.
 */
export function mechanismsFor(socket: Socket): string {
  return offersExternal(socket) ? WITH_EXTERNAL : MECHANISMS;
}

function offersExternal(socket: Socket): socket is TLSSocket {
  return socket instanceof TLSSocket && verifiedPeerCertificate(socket) !== null;
}

export interface AuthResult {
  user: User | null;
  error: string | null;
  /** the reply code of the refusal: only a wrong user or password is ACCESS_REFUSED */
  code: number;
  /** why a login was refused, for the log only (clients get RabbitMQ's safe text) */
  detail?: string;
  /** the user name a refused login gave, for the log (never the password) */
  username?: string;
}

const refused = (mechanism: string, detail: string, username?: string): AuthResult => ({
  user: null,
  error: `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`,
  code: ACCESS_REFUSED,
  detail,
  username,
});

/** Checks a connection.start-ok response with the mechanism the client chose. */
export function authenticate(
  mechanism: string,
  response: Buffer,
  users: UserStore,
  socket?: Socket,
  loginFrom: CertLoginFrom = 'common_name',
): AuthResult {
  if (mechanism === 'EXTERNAL' && socket !== undefined && offersExternal(socket)) return external(socket, users, loginFrom);
  let creds: [string, string] | null;
  if (mechanism === 'PLAIN') creds = parsePlain(response);
  else if (mechanism === 'AMQPLAIN') creds = parseAmqplain(response);
  else return { user: null, error: `unknown authentication mechanism '${mechanism}'`, code: COMMAND_INVALID };
  if (creds === null) return { user: null, error: `${mechanism} response is invalid`, code: SYNTAX_ERROR };
  const user = users.authenticate(creds[0], creds[1]);
  if (user !== null) return { user, error: null, code: 0 };
  return refused(mechanism, `user '${creds[0]}' - invalid credentials`, creds[0]);
}

/** RabbitMQ's ssl_cert_login_from values Leveret knows. */
export type CertLoginFrom = 'common_name' | 'distinguished_name';

/**
 * EXTERNAL: the user is named by the verified client certificate: its subject CN (several
 * are joined with ",", as RabbitMQ does) or its whole subject in RFC 4514 form. The user
 * must exist; no password is checked. The response (an authzid) is ignored, as RabbitMQ does.
 */
function external(socket: TLSSocket, users: UserStore, loginFrom: CertLoginFrom): AuthResult {
  const cert = verifiedPeerCertificate(socket);
  if (cert === null) return refused('EXTERNAL', 'connection peer presented no TLS (x.509) certificate');
  const cns = loginFrom === 'common_name' ? dnValues(cert.subject, 'CN') : [rfc4514(cert.subject)].filter((dn) => dn !== '');
  if (cns.length === 0) return refused('EXTERNAL', 'no name found');
  const name = cns.join(',');
  const user = users.get(name);
  if (user === undefined) return refused('EXTERNAL', `user '${name}' - invalid credentials`, name);
  return { user, error: null, code: 0 };
}

/** PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd */
function parsePlain(response: Buffer): [string, string] | null {
  const first = response.indexOf(0);
  const second = first < 0 ? -1 : response.indexOf(0, first + 1);
  if (second < 0) return null;
  return [response.toString('utf8', first + 1, second), response.toString('utf8', second + 1)];
}

/** AMQPLAIN: a field table without its length prefix, holding LOGIN and PASSWORD. */
function parseAmqplain(response: Buffer): [string, string] | null {
  const framed = Buffer.allocUnsafe(response.length + 4);
  framed.writeUInt32BE(response.length, 0);
  response.copy(framed, 4);
  try {
    const t = new Reader().reset(framed).table();
    const login = t.LOGIN;
    const password = t.PASSWORD;
    if (typeof login !== 'string' || typeof password !== 'string') return null;
    return [login, password];
  } catch {
    return null;
  }
}

/**
 * connection.update-secret for password logins: the secret is the password of the
 * connection's user, or a PLAIN response that must name that same user. Returns the user
 * as the store knows it now, or null when the secret does not prove that user.
 */
export function verifySecret(secret: Buffer, current: User, users: UserStore): User | null {
  let creds: [string, string] | null;
  if (secret.includes(0)) creds = parsePlain(secret);
  else creds = [current.name, secret.toString('utf8')];
  if (creds === null || creds[0] !== current.name) return null;
  return users.authenticate(creds[0], creds[1]);
}
