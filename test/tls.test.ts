// TLS: amqps with amqplib, amqp-client and pika; EXTERNAL logins from client certificates;
// verify_peer / fail_if_no_peer_cert; TLS 1.2+ only; HTTPS management; SIGHUP reload.
// The CA and certificates are made here with Debian's openssl command.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import amqplib from 'amqplib';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startBroker, type StartedBroker } from './helpers/broker';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';
import { api, putUser } from './helpers/http';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');
const PASSPHRASE = 'open sesame';
const TLS_USER = 'tls-user';

const dir = mkdtempSync(path.join(os.tmpdir(), 'leveret-tls-'));
const file = (name: string) => path.join(dir, name);

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
  if (r.error) throw new Error(`openssl: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

/** A key and a certificate signed by `ca`, named `name`.key / `name`.pem. */
function issue(name: string, subject: string, ca: string, extensions: string): void {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  writeFileSync(file(`${name}.ext`), extensions);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
  ]);
}

function makeCertificates(): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '60',
    '-subj',
    '/CN=Leveret Test CA',
  ]);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'rogue-ca.key',
    '-out',
    'rogue-ca.pem',
    '-days',
    '60',
    '-subj',
    '/CN=Rogue CA',
  ]);
  const server = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
  const client = 'extendedKeyUsage=clientAuth\n';
  issue('server', '/O=Leveret/CN=localhost', 'ca', server);
  issue('server2', '/O=Leveret Renewed/CN=localhost', 'ca', server);
  issue('client', `/O=Leveret Test/CN=${TLS_USER}`, 'ca', client);
  issue('stranger', '/CN=nobody-here', 'ca', client);
  issue('rogue', `/CN=${TLS_USER}`, 'rogue-ca', client);
  // The server key encrypted, for --tls-passphrase.
  openssl(['pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${PASSPHRASE}`, '-out', 'server-enc.key']);
}

const read = (name: string) => readFileSync(file(name));

interface Probe {
  cert?: X509Certificate;
  protocol?: string | null;
  error?: NodeJS.ErrnoException;
}

/**
 * A TLS handshake with the broker; resolves with the server certificate or the error. In
 * TLS 1.3 the server refuses a client certificate after the client's handshake is done, so
 * a refusal arrives as an error (or a close) shortly after; the probe waits for it.
 */
function probe(port: number, options: tls.ConnectionOptions = {}, settleMs = 300): Promise<Probe> {
  return new Promise((resolve) => {
    const out: Probe = {};
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: read('ca.pem'), ...options });
    let timer: NodeJS.Timeout | undefined;
    s.on('secureConnect', () => {
      out.cert = s.getPeerX509Certificate();
      out.protocol = s.getProtocol();
      // The AMQP header: a refused client certificate shows up as the socket closing instead of connection.start.
      s.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
      s.once('data', () => {
        clearTimeout(timer);
        s.destroy();
        resolve(out);
      });
      timer = setTimeout(() => {
        s.destroy();
        resolve(out);
      }, settleMs * 10);
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      out.error = err;
      s.destroy();
      resolve(out);
    });
    s.on('close', () => {
      clearTimeout(timer);
      if (out.error === undefined && out.cert !== undefined)
        out.error = Object.assign(new Error('closed before connection.start'), { code: 'CLOSED' });
      resolve(out);
    });
  });
}

function httpsGet(port: number, urlPath: string): Promise<{ status: number; json: unknown; cert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', servername: 'localhost', port, path: urlPath, ca: read('ca.pem'), auth: 'guest:guest', agent: false },
      (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerX509Certificate()!;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body), cert }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function waitForOutput(broker: StartedBroker, text: string, after = 0): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!broker.output().slice(after).includes(text)) {
    if (Date.now() > deadline) throw new Error(`broker did not log "${text}":\n${broker.output().slice(after)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Publishes one message to a fresh queue and reads it back with amqplib. */
async function roundTrip(conn: amqplib.ChannelModel, body: string): Promise<string> {
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from(body));
  for (let i = 0; i < 100; i++) {
    const m = await ch.get(queue, { noAck: true });
    if (m !== false) {
      await ch.close();
      return m.content.toString();
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('message did not come back');
}

beforeAll(() => {
  makeCertificates();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS with verify_peer (client certificate optional)', () => {
  let broker: StartedBroker;
  let tlsPort: number;
  let httpsPort: number;
  let pikaSetup: string | null = null;

  beforeAll(async () => {
    pikaSetup = ensurePythonModules(['pika'], ['python3-pika'], 'the pika TLS checks');
    tlsPort = await freePort();
    httpsPort = await freePort();
    broker = await startBroker({
      args: [
        '--tls-port',
        String(tlsPort),
        '--https-port',
        String(httpsPort),
        '--tls-cert',
        file('server.pem'),
        '--tls-key',
        file('server-enc.key'),
        '--tls-ca',
        file('ca.pem'),
        '--tls-verify',
        'verify_peer',
      ],
      env: { LEVERET_TLS_PASSPHRASE: PASSPHRASE, LEVERET_LOG_LEVEL: 'debug' },
    });
    await putUser(broker.httpPort, TLS_USER, { password: 'not-used-by-external', tags: '' });
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
  });

  it('amqplib publishes and consumes over amqps', async () => {
    const conn = await amqplib.connect(`amqps://guest:guest@localhost:${tlsPort}`, { ca: [read('ca.pem')] });
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const got = new Promise<string>((resolve) => void ch.consume(queue, (m) => m && resolve(m.content.toString()), { noAck: true }));
      ch.sendToQueue(queue, Buffer.from('over tls'));
      expect(await got).toBe('over tls');
    } finally {
      await conn.close();
    }
  });

  it('amqp-client publishes and consumes over amqps', async () => {
    const client = new AMQPClient(`amqps://guest:guest@localhost:${tlsPort}`, { ca: read('ca.pem') });
    const conn = await client.connect();
    try {
      const ch = await conn.channel();
      const { name } = await ch.queueDeclare('', { exclusive: true });
      const got = new Promise<string>((resolve) => {
        void ch.basicConsume(name, { noAck: true }, (m) => resolve(m.bodyToString() ?? ''));
      });
      await ch.basicPublish('', name, 'from amqp-client');
      expect(await got).toBe('from amqp-client');
    } finally {
      await conn.close();
    }
  });

  it('pika publishes and consumes over TLS, and logs in with EXTERNAL from its client certificate', () => {
    if (pikaSetup) expect.fail(pikaSetup);
    const script = `
import pika, ssl, sys
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def ctx(with_cert):
    c = ssl.create_default_context(cafile=ca)
    if with_cert:
        c.load_cert_chain(cert, key)
    return c
plain = pika.ConnectionParameters('127.0.0.1', port, credentials=pika.PlainCredentials('guest', 'guest'),
                                  ssl_options=pika.SSLOptions(ctx(False), 'localhost'))
conn = pika.BlockingConnection(plain)
ch = conn.channel()
q = ch.queue_declare('', exclusive=True).method.queue
ch.basic_publish('', q, b'pika over tls')
for method, props, body in ch.consume(q, auto_ack=True, inactivity_timeout=5):
    print('plain got', body.decode())
    break
conn.close()
ext = pika.ConnectionParameters('127.0.0.1', port, credentials=pika.credentials.ExternalCredentials(),
                                ssl_options=pika.SSLOptions(ctx(True), 'localhost'))
conn = pika.BlockingConnection(ext)
ch = conn.channel()
q = ch.queue_declare('', exclusive=True).method.queue
ch.basic_publish('', q, b'external')
method, props, body = ch.basic_get(q, auto_ack=True)
while method is None:
    method, props, body = ch.basic_get(q, auto_ack=True)
print('external got', body.decode())
conn.close()
`;
    const run = spawnSync(PYTHON, ['-c', script, String(tlsPort), file('ca.pem'), file('client.pem'), file('client.key')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(run.stdout).toContain('plain got pika over tls');
    expect(run.stdout).toContain('external got external');
  }, 90_000);

  it('amqplib logs in with EXTERNAL as the certificate CN, and the API shows the TLS facts', async () => {
    const conn = await amqplib.connect(`amqps://localhost:${tlsPort}`, {
      ca: [read('ca.pem')],
      cert: read('client.pem'),
      key: read('client.key'),
      credentials: amqplib.credentials.external(),
      clientProperties: { connection_name: 'tls-external' },
    });
    try {
      expect(await roundTrip(conn, 'hello external')).toBe('hello external');
      const r = await api(broker.httpPort, 'GET', '/api/connections');
      const c = (r.json as Array<Record<string, unknown>>).find((x) => x.user_provided_name === 'tls-external')!;
      const client = new X509Certificate(read('client.pem'));
      expect(c).toMatchObject({
        user: TLS_USER,
        auth_mechanism: 'EXTERNAL',
        ssl: true,
        ssl_protocol: 'tlsv1.3',
        ssl_cipher: expect.stringMatching(/^(aes_\d+_gcm|chacha20_poly1305)$/),
        ssl_hash: 'aead',
        ssl_key_exchange: 'any',
        peer_cert_subject: `CN=${TLS_USER},O=Leveret Test`,
        peer_cert_issuer: 'CN=Leveret Test CA',
        peer_cert_validity: `${new Date(client.validFrom).toISOString().slice(0, 19)}Z - ${new Date(client.validTo).toISOString().slice(0, 19)}Z`,
      });
    } finally {
      await conn.close();
    }
  });

  it('a TLS 1.2 connection shows its ECDHE AEAD suite; a plain one shows ssl false', async () => {
    const conn = await amqplib.connect(`amqps://guest:guest@localhost:${tlsPort}`, {
      ca: [read('ca.pem')],
      maxVersion: 'TLSv1.2',
      clientProperties: { connection_name: 'tls12' },
    });
    const plainConn = await amqplib.connect(`${broker.url}`, { clientProperties: { connection_name: 'plain' } });
    try {
      const r = await api(broker.httpPort, 'GET', '/api/connections');
      const list = r.json as Array<Record<string, unknown>>;
      expect(list.find((x) => x.user_provided_name === 'tls12')).toMatchObject({
        ssl: true,
        ssl_protocol: 'tlsv1.2',
        ssl_key_exchange: 'ecdhe_rsa',
        ssl_cipher: expect.stringMatching(/^(aes_\d+_gcm|chacha20_poly1305)$/),
        ssl_hash: 'aead',
        auth_mechanism: 'PLAIN',
        peer_cert_subject: null,
      });
      expect(list.find((x) => x.user_provided_name === 'plain')).toMatchObject({ ssl: false, ssl_protocol: null });
    } finally {
      await conn.close();
      await plainConn.close();
    }
  });

  it('EXTERNAL is offered only with a verified client certificate, and needs an existing user', async () => {
    // No client certificate: EXTERNAL is not among connection.start's mechanisms.
    await expect(
      amqplib.connect(`amqps://localhost:${tlsPort}`, { ca: [read('ca.pem')], credentials: amqplib.credentials.external() }),
    ).rejects.toThrow(/SASL mechanism EXTERNAL is not provided by the server/);
    // Over plain TCP neither.
    await expect(amqplib.connect(`amqp://localhost:${broker.port}`, { credentials: amqplib.credentials.external() })).rejects.toThrow(
      /SASL mechanism EXTERNAL is not provided by the server/,
    );
    // A verified certificate whose CN names no user: refused with RabbitMQ's text, the reason logged.
    const before = broker.output().length;
    await expect(
      amqplib.connect(`amqps://localhost:${tlsPort}`, {
        ca: [read('ca.pem')],
        cert: read('stranger.pem'),
        key: read('stranger.key'),
        credentials: amqplib.credentials.external(),
      }),
    ).rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL/);
    await waitForOutput(broker, "user 'nobody-here' - invalid credentials", before);
  });

  it('verify_peer refuses a client certificate from another CA', async () => {
    const p = await probe(tlsPort, { cert: read('rogue.pem'), key: read('rogue.key') });
    expect(p.error, 'the handshake should fail').toBeDefined();
    const ok = await probe(tlsPort, { cert: read('client.pem'), key: read('client.key') });
    expect(ok.error).toBeUndefined();
  });

  it('refuses TLS 1.1 and TLS 1.2 suites without forward secrecy or AEAD', async () => {
    // SECLEVEL=0 lets this client offer TLS 1.1 at all; the refusal then comes from the broker.
    const old = await probe(tlsPort, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(old.error?.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    const cbc = await probe(tlsPort, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256' });
    expect(cbc.error?.code).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    const good = await probe(tlsPort, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    expect(good.error).toBeUndefined();
    expect(good.protocol).toBe('TLSv1.2');
  });

  it('refuses a TLS 1.2 renegotiation once the handshake is done', async () => {
    // The broker answers a renegotiation request with a no_renegotiation alert, so it never
    // completes (OpenSSL keeps the session as it was); one that completes takes milliseconds.
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: read('ca.pem'), maxVersion: 'TLSv1.2' });
      const done = (what: string) => {
        s.destroy();
        resolve(what);
      };
      s.on('error', () => done('failed'));
      s.once('secureConnect', () => {
        s.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
        // connection.start arrived: the broker took the connection; now ask to renegotiate.
        s.once('data', () => {
          s.renegotiate({ rejectUnauthorized: true }, (err) => done(err ? 'failed' : 'renegotiated'));
          setTimeout(() => done('not renegotiated'), 1000);
        });
      });
    });
    expect(outcome).not.toBe('renegotiated');
  });

  it('lists the amqps and HTTPS listeners and answers the management API over HTTPS', async () => {
    const overview = await api(broker.httpPort, 'GET', '/api/overview');
    const listeners = (overview.json as { listeners: Array<Record<string, unknown>> }).listeners;
    expect(listeners.map((l) => [l.protocol, l.port])).toEqual([
      ['amqp', broker.port],
      ['http', broker.httpPort],
      ['amqp/ssl', tlsPort],
      ['https', httpsPort],
    ]);
    const r = await httpsGet(httpsPort, '/api/overview');
    expect(r.status).toBe(200);
    expect((r.json as { listeners: unknown[] }).listeners).toHaveLength(4);
    expect(r.cert.fingerprint256).toBe(new X509Certificate(read('server.pem')).fingerprint256);
    const health = await api(broker.httpPort, 'GET', '/api/health/checks/protocol-listener/amqps');
    expect(health.json).toEqual({ status: 'ok', protocol: 'amqp/ssl' });
  });

  it('checks the real certificate for expiration', async () => {
    expect((await api(broker.httpPort, 'GET', '/api/health/checks/certificate-expiration/1/weeks')).json).toEqual({ status: 'ok' });
    const r = await api(broker.httpPort, 'GET', '/api/health/checks/certificate-expiration/2/months');
    expect(r.status).toBe(503);
    const expires = new Date(new X509Certificate(read('server.pem')).validTo).toISOString();
    expect(r.json).toEqual({
      status: 'failed',
      reason: 'Certificates expiring',
      expired: [
        { protocol: 'amqp/ssl', interface: '0.0.0.0', port: tlsPort, certfile: file('server.pem'), cacertfile: file('ca.pem'), expires },
        { protocol: 'https', interface: '0.0.0.0', port: httpsPort, certfile: file('server.pem'), cacertfile: file('ca.pem'), expires },
      ],
    });
  });

  it('never logs the passphrase', () => {
    expect(broker.output()).not.toContain(PASSPHRASE);
  });
});

describe('TLS with fail_if_no_peer_cert', () => {
  let broker: StartedBroker;
  let tlsPort: number;

  beforeAll(async () => {
    tlsPort = await freePort();
    broker = await startBroker({
      args: [
        '--tls-port',
        String(tlsPort),
        '--https-port=-1',
        '--tls-cert',
        file('server.pem'),
        '--tls-key',
        file('server.key'),
        '--tls-ca',
        file('ca.pem'),
      ],
      env: {
        LEVERET_TLS_VERIFY: 'verify_peer',
        LEVERET_TLS_FAIL_IF_NO_PEER_CERT: 'true',
        LEVERET_TLS_CERT_LOGIN_FROM: 'distinguished_name',
      },
    });
    await putUser(broker.httpPort, `CN=${TLS_USER},O=Leveret Test`, { password: 'unused', tags: '' });
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it('refuses a client without a certificate in the TLS handshake', async () => {
    const p = await probe(tlsPort);
    expect(p.error?.code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    await expect(amqplib.connect(`amqps://guest:guest@localhost:${tlsPort}`, { ca: [read('ca.pem')] })).rejects.toThrow();
  });

  it('lets a client with a certificate in, by password as well as EXTERNAL (user named by the whole subject)', async () => {
    const withCert = { ca: [read('ca.pem')], cert: read('client.pem'), key: read('client.key') };
    const conn = await amqplib.connect(`amqps://guest:guest@localhost:${tlsPort}`, withCert);
    expect(await roundTrip(conn, 'with a certificate')).toBe('with a certificate');
    await conn.close();
    const ext = await amqplib.connect(`amqps://localhost:${tlsPort}`, {
      ...withCert,
      credentials: amqplib.credentials.external(),
      clientProperties: { connection_name: 'dn' },
    });
    expect(await roundTrip(ext, 'as a DN')).toBe('as a DN');
    const listed = (await api(broker.httpPort, 'GET', '/api/connections')).json as Array<Record<string, unknown>>;
    expect(listed.find((c) => c.user_provided_name === 'dn')).toMatchObject({
      user: `CN=${TLS_USER},O=Leveret Test`,
      auth_mechanism: 'EXTERNAL',
    });
    await ext.close();
    const overview = await api(broker.httpPort, 'GET', '/api/overview');
    expect((overview.json as { listeners: Array<{ protocol: string }> }).listeners.map((l) => l.protocol)).toEqual([
      'amqp',
      'http',
      'amqp/ssl',
    ]);
  });
});

describe('bad TLS configuration', () => {
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(
      process.execPath,
      [CLI, '--port', '0', '--http-port', '0', '--tls-port', '0', '--https-port', '0', '--data-dir', path.join(dir, 'unused'), ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 20_000,
      },
    );
    return { status: r.status, stderr: r.stderr };
  };

  it('exits 2 for a wrong or missing passphrase, naming the key file', () => {
    const wrong = run(['--tls-cert', file('server.pem'), '--tls-key', file('server-enc.key'), '--tls-passphrase', 'wrong']);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/^leveret: --tls-key .*server-enc\.key.*cannot decrypt the key: wrong or missing --tls-passphrase/);
    const none = run(['--tls-cert', file('server.pem'), '--tls-key', file('server-enc.key')]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('cannot decrypt the key');
  }, 30_000);

  it('exits 2 for a missing file, a file that is not PEM, a key of another certificate', () => {
    const missing = run(['--tls-cert', file('absent.pem'), '--tls-key', file('server.key')]);
    expect(missing).toEqual({ status: 2, stderr: `leveret: cannot read --tls-cert file ${file('absent.pem')}: no such file\n` });
    const notPem = run(['--tls-cert', file('server.ext'), '--tls-key', file('server.key')]);
    expect(notPem.status).toBe(2);
    expect(notPem.stderr).toContain(`leveret: --tls-cert ${file('server.ext')}: not a PEM certificate`);
    const mismatch = run(['--tls-cert', file('server2.pem'), '--tls-key', file('server.key')]);
    expect(mismatch.status).toBe(2);
    expect(mismatch.stderr).toContain('the key does not belong to the certificate');
  }, 30_000);

  it('exits 2 for a key without a certificate and an unknown verify mode', () => {
    const alone = run(['--tls-key', file('server.key')]);
    expect(alone).toEqual({ status: 2, stderr: 'leveret: --tls-key needs --tls-cert as well\n' });
    const verify = run([], { LEVERET_TLS_VERIFY: 'verify_maybe' });
    expect(verify.status).toBe(2);
    expect(verify.stderr).toContain('must be one of verify_none, verify_peer');
  }, 30_000);
});

describe('certificate reload on SIGHUP', () => {
  let broker: StartedBroker;
  let tlsPort: number;
  let httpsPort: number;
  const live = (name: string) => path.join(dir, 'live', name);

  beforeAll(async () => {
    rmSync(path.join(dir, 'live'), { recursive: true, force: true });
    spawnSync('mkdir', ['-p', path.join(dir, 'live')]);
    copyFileSync(file('server.pem'), live('cert.pem'));
    copyFileSync(file('server.key'), live('key.pem'));
    tlsPort = await freePort();
    httpsPort = await freePort();
    broker = await startBroker({
      args: [
        '--tls-port',
        String(tlsPort),
        '--https-port',
        String(httpsPort),
        '--tls-cert',
        live('cert.pem'),
        '--tls-key',
        live('key.pem'),
      ],
    });
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it('new connections get the new certificate, existing ones keep working, a bad file keeps the old one', async () => {
    const first = new X509Certificate(read('server.pem')).fingerprint256;
    const second = new X509Certificate(read('server2.pem')).fingerprint256;
    expect((await probe(tlsPort)).cert?.fingerprint256).toBe(first);
    const conn = await amqplib.connect(`amqps://guest:guest@localhost:${tlsPort}`, { ca: [read('ca.pem')] });
    expect(await roundTrip(conn, 'before reload')).toBe('before reload');

    copyFileSync(file('server2.pem'), live('cert.pem'));
    copyFileSync(file('server2.key'), live('key.pem'));
    let mark = broker.output().length;
    broker.kill('SIGHUP');
    await waitForOutput(broker, 'TLS certificate reloaded', mark);

    expect(await roundTrip(conn, 'after reload')).toBe('after reload');
    expect((await probe(tlsPort)).cert?.fingerprint256).toBe(second);
    expect((await httpsGet(httpsPort, '/api/overview')).cert.fingerprint256).toBe(second);
    const expiry = await api(broker.httpPort, 'GET', '/api/health/checks/certificate-expiration/2/months');
    expect((expiry.json as { expired: Array<{ expires: string }> }).expired[0].expires).toBe(
      new Date(new X509Certificate(read('server2.pem')).validTo).toISOString(),
    );

    // A half-written certificate: the reload fails, is logged, and the broker keeps serving the last good one.
    writeFileSync(live('cert.pem'), '-----BEGIN CERTIFICATE-----\ntruncated\n');
    mark = broker.output().length;
    broker.kill('SIGHUP');
    await waitForOutput(broker, 'TLS certificate reload failed; keeping the previous certificate', mark);
    expect((await probe(tlsPort)).cert?.fingerprint256).toBe(second);
    expect(await roundTrip(conn, 'still up')).toBe('still up');
    await conn.close();

    const connections = await api(broker.httpPort, 'GET', '/api/overview');
    expect((connections.json as { object_totals: { connections: number } }).object_totals.connections).toBe(0);
  });
});
