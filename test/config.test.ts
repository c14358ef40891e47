import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, HelpRequested, SETTINGS, VersionRequested, defaultConfig, loadConfig, redactConfig } from '../src/config';
import { parseAmount, parseDiskFreeLimit, parseMemoryWatermark, resolveLimit } from '../src/resource-limits';

const dir = mkdtempSync(join(tmpdir(), 'leveret-config-'));
let fileCount = 0;
function configFile(contents: string): string {
  const path = join(dir, `config-${fileCount++}.json`);
  writeFileSync(path, contents);
  return path;
}

function configError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('returns the defaults with no input', () => {
    expect(loadConfig([], {})).toEqual({
      port: 5672,
      host: '0.0.0.0',
      httpPort: 15672,
      statsInterval: 5000,
      nodeName: '',
      dataDir: './data',
      logLevel: 'info',
      logFormat: 'auto',
      logFile: '',
      heartbeat: 60,
      frameMax: 131072,
      channelMax: 2047,
      handshakeTimeout: 10000,
      defaultUser: 'guest',
      defaultPass: 'guest',
      loopbackUsers: ['guest'],
      segmentSize: 8 * 1024 * 1024,
      queueMemoryBudget: 8 * 1024 * 1024,
      tlsPort: 5671,
      tlsCert: '',
      tlsKey: '',
      tlsCa: '',
      tlsPassphrase: '',
      tlsVerify: 'verify_none',
      tlsFailIfNoPeerCert: false,
      tlsCertLoginFrom: 'common_name',
      httpsPort: 15671,
      shutdownTimeout: 10000,
      maxMessageSize: 134217728,
      maxConnections: 0,
      consumerTimeout: 1800000,
      vmMemoryHighWatermark: '0.4',
      diskFreeLimit: '50MB',
      clusterEtcd: [],
      clusterName: 'leveret',
      advertiseHost: '',
      replicationPort: 5679,
      minIsr: 1,
      replicationMaxLag: 10,
      clusterLeaseTtl: 5,
      clusterSecret: '',
    });
    expect(defaultConfig()).toEqual(loadConfig([], {}));
  });

  it('derives flag, env and key names from the setting name', () => {
    const httpPort = SETTINGS.find((s) => s.name === 'httpPort');
    expect(httpPort).toMatchObject({ flag: '--http-port', env: 'LEVERET_HTTP_PORT', key: 'httpPort' });
  });

  it('takes flag over env over file over default', () => {
    const file = configFile(JSON.stringify({ port: 1001, httpPort: 2001, heartbeat: 3001, dataDir: '/from/file' }));
    const config = loadConfig(['--config', file, '--port', '1000'], {
      LEVERET_PORT: '1002',
      LEVERET_HTTP_PORT: '2000',
    });
    expect(config.port).toBe(1000); // flag beats env and file
    expect(config.httpPort).toBe(2000); // env beats file
    expect(config.heartbeat).toBe(3001); // file beats default
    expect(config.dataDir).toBe('/from/file');
    expect(config.channelMax).toBe(2047); // default
  });

  it('reads the config file named by LEVERET_CONFIG, and --config overrides it', () => {
    const a = configFile('{"port": 1111}');
    const b = configFile('{"port": 2222}');
    expect(loadConfig([], { LEVERET_CONFIG: a }).port).toBe(1111);
    expect(loadConfig(['--config', b], { LEVERET_CONFIG: a }).port).toBe(2222);
  });

  it('accepts --flag=value and --flag value; the last repeat wins', () => {
    expect(loadConfig(['--port=5673'], {}).port).toBe(5673);
    expect(loadConfig(['--log-level', 'debug'], {}).logLevel).toBe('debug');
    expect(loadConfig(['--port=1', '--port', '2'], {}).port).toBe(2);
  });

  it('reads --log-format and --log-file, and refuses an unknown format', () => {
    expect(loadConfig(['--log-format', 'pretty', '--log-file', '/var/log/leveret.log'], {})).toMatchObject({
      logFormat: 'pretty',
      logFile: '/var/log/leveret.log',
    });
    expect(loadConfig([], { LEVERET_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(() => loadConfig(['--log-format', 'xml'], {})).toThrow(/--log-format must be one of auto, json, pretty/);
  });

  it("accepts '::' as host", () => {
    expect(loadConfig(['--host', '::'], {}).host).toBe('::');
    expect(loadConfig([], { LEVERET_HOST: '::' }).host).toBe('::');
  });

  it('parses lists from comma-separated text and from JSON arrays', () => {
    expect(loadConfig(['--loopback-users', 'guest, admin'], {}).loopbackUsers).toEqual(['guest', 'admin']);
    expect(loadConfig([], { LEVERET_LOOPBACK_USERS: '' }).loopbackUsers).toEqual([]);
    const file = configFile('{"loopbackUsers": ["a", "b"]}');
    expect(loadConfig(['--config', file], {}).loopbackUsers).toEqual(['a', 'b']);
  });

  it('does not share the default list between configs', () => {
    loadConfig([], {}).loopbackUsers.push('mutated');
    expect(loadConfig([], {}).loopbackUsers).toEqual(['guest']);
  });

  it('throws HelpRequested with usage naming every flag and env var', () => {
    let help: unknown;
    try {
      loadConfig(['--port', '1', '--help'], { LEVERET_PORT: 'not checked' });
    } catch (err) {
      help = err;
    }
    expect(help).toBeInstanceOf(HelpRequested);
    const text = (help as HelpRequested).text;
    for (const s of SETTINGS) {
      expect(text).toContain(s.flag);
      expect(text).toContain(s.env);
    }
    expect(text).toContain('LEVERET_CONFIG');
    expect(() => loadConfig(['-h'], {})).toThrow(HelpRequested);
  });

  it('throws VersionRequested for --version', () => {
    expect(() => loadConfig(['--version'], {})).toThrow(VersionRequested);
  });

  it('masks secrets in redactConfig', () => {
    const shown = redactConfig(loadConfig(['--default-pass', 's3cret'], {}));
    expect(JSON.stringify(shown)).not.toContain('s3cret');
    expect(shown.defaultUser).toBe('guest');
    const tls = redactConfig(loadConfig(['--tls-passphrase', 'k3y-secret'], {}));
    expect(JSON.stringify(tls)).not.toContain('k3y-secret');
  });

  it('reads the TLS settings from flags, environment and file, booleans as true/false', () => {
    const file = configFile(JSON.stringify({ tlsFailIfNoPeerCert: true, tlsCa: '/etc/ca.pem' }));
    const config = loadConfig(['--config', file, '--tls-verify', 'verify_peer'], { LEVERET_TLS_PORT: '5999' });
    expect(config).toMatchObject({ tlsVerify: 'verify_peer', tlsPort: 5999, tlsFailIfNoPeerCert: true, tlsCa: '/etc/ca.pem' });
    expect(loadConfig([], { LEVERET_TLS_FAIL_IF_NO_PEER_CERT: 'false' }).tlsFailIfNoPeerCert).toBe(false);
    expect(configError(['--tls-fail-if-no-peer-cert', 'yes'])).toBe('--tls-fail-if-no-peer-cert must be true or false, got "yes"');
  });
});

describe('loadConfig errors', () => {
  it('takes the memory watermark and disk free limit as RabbitMQ spells them', () => {
    expect(loadConfig(['--vm-memory-high-watermark', '0.6', '--disk-free-limit', 'mem_relative:1.5'], {})).toMatchObject({
      vmMemoryHighWatermark: '0.6',
      diskFreeLimit: 'mem_relative:1.5',
    });
    expect(loadConfig([], { LEVERET_VM_MEMORY_HIGH_WATERMARK: '512MB', LEVERET_DISK_FREE_LIMIT: '2GB' })).toMatchObject({
      vmMemoryHighWatermark: '512MB',
      diskFreeLimit: '2GB',
    });
    const file = configFile(JSON.stringify({ vmMemoryHighWatermark: 0.5, diskFreeLimit: 1000000 }));
    expect(loadConfig(['--config', file], {})).toMatchObject({ vmMemoryHighWatermark: '0.5', diskFreeLimit: '1000000' });
    expect(configError(['--vm-memory-high-watermark', '1.5'])).toMatch(/--vm-memory-high-watermark must be a fraction/);
    expect(configError(['--vm-memory-high-watermark', '12XB'])).toMatch(/got "12XB"/);
    expect(configError(['--disk-free-limit', 'mem_relative:x'])).toMatch(/--disk-free-limit must be an amount/);
  });

  it("reads sizes with RabbitMQ's units and resolves fractions against memory", () => {
    expect(parseAmount('50MB')).toBe(50_000_000);
    expect(parseAmount('1GiB')).toBe(1024 ** 3);
    expect(parseAmount('512M')).toBe(512 * 1024 ** 2);
    expect(parseAmount('2kB')).toBe(2000);
    expect(parseAmount('12345')).toBe(12345);
    expect(parseAmount('1.5GB')).toBeNull();
    expect(parseMemoryWatermark('0.4')).toEqual({ ofMemory: 0.4 });
    expect(parseMemoryWatermark('.25')).toEqual({ ofMemory: 0.25 });
    expect(parseMemoryWatermark('150MB')).toEqual({ bytes: 150_000_000 });
    expect(parseMemoryWatermark('1073741824')).toEqual({ bytes: 1073741824 });
    expect(parseDiskFreeLimit('mem_relative:2')).toEqual({ ofMemory: 2 });
    expect(resolveLimit({ ofMemory: 0.4 }, 1000)).toBe(400);
    expect(resolveLimit({ bytes: 7 }, 1000)).toBe(7);
  });

  it('rejects an unknown flag', () => {
    expect(configError(['--bogus'])).toMatch(/unknown option '--bogus'/);
  });

  it('rejects a flag without its value', () => {
    expect(configError(['--port'])).toMatch(/--port.*argument missing/);
    expect(configError(['--port', '--host', '::'])).toMatch(/--port/);
  });

  it('rejects positional arguments', () => {
    expect(configError(['5672'])).toMatch(/unexpected argument '5672'/);
  });

  it('rejects a bad integer', () => {
    expect(configError(['--port', 'notanumber'])).toMatch(/--port must be an integer from 0 to 65535, got "notanumber"/);
    for (const bad of ['12abc', '1.5', '1e3', '0x10', ' 1', '']) {
      expect(configError([`--heartbeat=${bad}`])).toMatch(/--heartbeat must be an integer/);
    }
    expect(configError([], { LEVERET_PORT: 'x' })).toMatch(/environment variable LEVERET_PORT must be an integer/);
  });

  it('rejects out-of-range integers', () => {
    expect(configError(['--port=65536'])).toMatch(/--port must be an integer from 0 to 65535, got "65536"/);
    expect(configError(['--port=-1'])).toMatch(/--port/);
    expect(configError(['--frame-max', '4095'])).toMatch(/--frame-max must be an integer from 4096/);
    expect(configError([], { LEVERET_CHANNEL_MAX: '0' })).toMatch(/LEVERET_CHANNEL_MAX/);
  });

  it('rejects a value outside an enum', () => {
    expect(configError(['--log-level', 'loud'])).toMatch(/--log-level must be one of .*info.*got "loud"/);
  });

  it('rejects an unreadable config file', () => {
    expect(configError(['--config', '/nonexistent/leveret.json'])).toMatch(
      /cannot read config file \/nonexistent\/leveret.json: no such file/,
    );
    expect(configError(['--config', dir])).toMatch(/cannot read config file .*is a directory/);
  });

  it('rejects a config file that is not a JSON object', () => {
    expect(configError(['--config', configFile('{port: 1}')])).toMatch(/is not valid JSON/);
    expect(configError(['--config', configFile('[1]')])).toMatch(/must contain a JSON object/);
  });

  it('rejects an unknown key in the config file', () => {
    expect(configError(['--config', configFile('{"prot": 1}')])).toMatch(/unknown key "prot"/);
  });

  it('rejects wrongly typed values in the config file', () => {
    expect(configError(['--config', configFile('{"port": "5672"}')])).toMatch(/key "port" must be an integer/);
    expect(configError(['--config', configFile('{"port": 1.5}')])).toMatch(/key "port" must be an integer/);
    expect(configError(['--config', configFile('{"loopbackUsers": "guest"}')])).toMatch(/key "loopbackUsers" must be an array of strings/);
    expect(configError(['--config', configFile('{"host": ""}')])).toMatch(/key "host" must be a non-empty string/);
  });

  it('does not consult the file for a setting given on the command line', () => {
    const file = configFile('{"port": "bad"}');
    expect(loadConfig(['--config', file, '--port', '1'], {}).port).toBe(1);
  });
});

describe('leveret process', () => {
  const cli = resolve(__dirname, '..', 'dist', 'cli.js');
  // Keep the developer's LEVERET_* variables out of the child.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEVERET_')));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', timeout: 10_000 });

  it('exits 2 naming a bad integer', () => {
    const r = run('--port', 'notanumber');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^leveret: .*--port.*notanumber/);
  });

  it('exits 2 naming an unknown flag', () => {
    const r = run('--bogus');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^leveret: .*--bogus/);
  });

  it('exits 2 naming a missing config file', () => {
    const r = run('--config', '/nonexistent');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^leveret: .*\/nonexistent/);
  });

  it('prints usage for --help and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('LEVERET_PORT');
    expect(r.stdout).toContain('--port');
    expect(r.stderr).toBe('');
  });
});
