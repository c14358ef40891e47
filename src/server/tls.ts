/**
 * TLS for the amqps and HTTPS listeners: reads the certificate files named by the
 * configuration, checks that they make a usable secure context, and describes TLS
 * sockets the way RabbitMQ's management API does.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, constants } from 'node:crypto';
import { createSecureContext, type SecureContextOptions, type TlsOptions, type TLSSocket } from 'node:tls';
import { ConfigError, type Config } from '../config';

/**
 * TLS 1.3 suites first (OpenSSL's defaults), then only forward-secret AEAD suites for
 * TLS 1.2: no CBC, no static RSA key exchange.
 */
export const CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export const MIN_VERSION = 'TLSv1.2';

/** The certificate material read from disk, checked to make a secure context. */
export interface TlsMaterial {
  certFile: string;
  caFile: string;
  /** what createSecureContext / setSecureContext take */
  context: SecureContextOptions;
  /** the server's own (leaf) certificate */
  certificate: X509Certificate;
}

/** Whether the configuration turns TLS on; a certificate without a key (or the reverse) is an error. */
export function tlsConfigured(config: Config): boolean {
  if ((config.tlsCert === '') !== (config.tlsKey === '')) {
    throw new ConfigError(config.tlsCert === '' ? '--tls-key needs --tls-cert as well' : '--tls-cert needs --tls-key as well');
  }
  return config.tlsCert !== '';
}

/**
 * Reads and checks the files; null when TLS is not configured. Throws ConfigError naming the
 * file and what is wrong with it (unreadable, not PEM, wrong passphrase, key not matching).
 */
export function loadTls(config: Config): TlsMaterial | null {
  if (!tlsConfigured(config)) return null;
  const cert = readPem('--tls-cert', config.tlsCert);
  const key = readPem('--tls-key', config.tlsKey);
  const ca = config.tlsCa === '' ? undefined : readPem('--tls-ca', config.tlsCa);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`--tls-cert ${config.tlsCert}: not a PEM certificate (${reason(err)})`);
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new ConfigError(`--tls-ca ${config.tlsCa}: not a PEM certificate bundle (${reason(err)})`);
    }
  }
  const context: SecureContextOptions = {
    cert,
    key,
    ca,
    passphrase: config.tlsPassphrase === '' ? undefined : config.tlsPassphrase,
    minVersion: MIN_VERSION,
    ciphers: CIPHERS,
    // TLS 1.2 renegotiation could change what was verified and costs the server a handshake each time.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
  try {
    createSecureContext(context);
  } catch (err) {
    throw new ConfigError(`--tls-key ${config.tlsKey} with --tls-cert ${config.tlsCert}: ${describeContextError(err)}`);
  }
  return { certFile: config.tlsCert, caFile: config.tlsCa, context, certificate };
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError(`cannot read ${flag} file ${path}: ${why}`);
  }
}

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** OpenSSL's messages are terse ("bad decrypt"); say what an operator should check. */
function describeContextError(err: unknown): string {
  const m = reason(err);
  if (/bad decrypt|bad password|interrupted or cancelled/i.test(m))
    return `cannot decrypt the key: wrong or missing --tls-passphrase (${m})`;
  if (/key values mismatch/i.test(m)) return `the key does not belong to the certificate (${m})`;
  if (/no start line|unsupported|decoder/i.test(m)) return `not a PEM private key (${m})`;
  return m;
}

/**
 * Options for a tls.Server. verify_peer asks for a client certificate; refusing a missing
 * one is left to OpenSSL only with fail_if_no_peer_cert, an invalid one is refused by
 * admit (Erlang's verify_peer refuses it even when a missing one is allowed).
 */
export function serverOptions(config: Config, material: TlsMaterial): TlsOptions {
  const verify = config.tlsVerify === 'verify_peer';
  return {
    ...material.context,
    requestCert: verify,
    rejectUnauthorized: verify && config.tlsFailIfNoPeerCert,
  };
}

/**
 * Whether a socket whose handshake is done may go on to AMQP. Under verify_peer without
 * fail_if_no_peer_cert OpenSSL lets every client through; one that presented a certificate
 * that did not verify is dropped here.
 */
export function admit(socket: TLSSocket, config: Config): boolean {
  if (config.tlsVerify !== 'verify_peer' || socket.authorized || !hasPeerCertificate(socket)) return true;
  socket.destroy();
  return false;
}

function hasPeerCertificate(socket: TLSSocket): boolean {
  const cert = socket.getPeerCertificate();
  return cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
}

/** The client certificate, if the peer presented one and it verified against the CAs. */
export function verifiedPeerCertificate(socket: TLSSocket): X509Certificate | null {
  if (!socket.authorized) return null;
  return socket.getPeerX509Certificate() ?? null;
}

/** Every value of one attribute in a distinguished name as X509Certificate prints it (one "K=V" a line). */
export function dnValues(dn: string, attribute: string): string[] {
  const out: string[] = [];
  for (const line of dn.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq) === attribute) out.push(line.slice(eq + 1));
  }
  return out;
}

/**
 * A distinguished name as RabbitMQ writes it (RFC 4514: the last RDN first, comma-separated).
 * Node prints the RDNs in certificate order, one a line.
 */
export function rfc4514(dn: string): string {
  return dn
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map(escapeRdn)
    .join(',');
}

/** Escapes the characters RFC 4514 reserves in an attribute value. */
function escapeRdn(line: string): string {
  const eq = line.indexOf('=');
  if (eq < 0) return line;
  const value = line
    .slice(eq + 1)
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
  return `${line.slice(0, eq)}=${value}`;
}

/** "2026-11-30T01:57:48Z" from X509Certificate's "Nov 30 01:57:48 2026 GMT". */
function isoSeconds(text: string): string {
  return new Date(text).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RabbitMQ's peer_cert_validity: "<not before> - <not after>". */
export function validity(cert: X509Certificate): string {
  return `${isoSeconds(cert.validFrom)} - ${isoSeconds(cert.validTo)}`;
}

/** What RabbitMQ's management API shows for a TLS connection. */
export interface TlsFacts {
  ssl_protocol: string;
  ssl_cipher: string;
  ssl_hash: string;
  ssl_key_exchange: string;
  peer_cert_subject: string | null;
  peer_cert_issuer: string | null;
  peer_cert_validity: string | null;
}

/**
 * The negotiated protocol and suite in Erlang's names (tlsv1.3, aes_256_gcm, aead,
 * ecdhe_rsa, or "any" as TLS 1.3's key exchange), and the client certificate if any.
 */
export function tlsFacts(socket: TLSSocket): TlsFacts {
  // Fixed once the handshake is done; the API lists connections often, certificates parse slowly.
  let facts = FACTS.get(socket);
  if (facts === undefined) {
    facts = readTlsFacts(socket);
    FACTS.set(socket, facts);
  }
  return facts;
}

const FACTS = new WeakMap<TLSSocket, TlsFacts>();

function readTlsFacts(socket: TLSSocket): TlsFacts {
  const protocol = socket.getProtocol() ?? '';
  const suite = socket.getCipher() as { standardName?: string; name: string } | undefined;
  const parts = splitSuite(suite?.standardName ?? suite?.name ?? '');
  const peer = socket.getPeerX509Certificate();
  return {
    ssl_protocol: protocol.toLowerCase(),
    ssl_cipher: parts.cipher,
    ssl_hash: parts.hash,
    ssl_key_exchange: parts.keyExchange,
    peer_cert_subject: peer === undefined ? null : rfc4514(peer.subject),
    peer_cert_issuer: peer === undefined ? null : rfc4514(peer.issuer),
    peer_cert_validity: peer === undefined ? null : validity(peer),
  };
}

/** "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" or TLS 1.3's "TLS_AES_256_GCM_SHA384". */
function splitSuite(name: string): { keyExchange: string; cipher: string; hash: string } {
  const m = /^TLS_(?:(.+)_WITH_)?(.+?)_(SHA\d*|MD5)$/.exec(name);
  if (m === null) return { keyExchange: '', cipher: name.toLowerCase(), hash: '' };
  const cipher = m[2].toLowerCase();
  // An AEAD cipher authenticates itself; the suite's hash is only its PRF (Erlang's mac: aead).
  const aead = /gcm|ccm|poly1305/.test(cipher);
  return { keyExchange: m[1] === undefined ? 'any' : m[1].toLowerCase(), cipher, hash: aead ? 'aead' : m[3].toLowerCase() };
}
