// The docker-compose files without Docker (no daemon here, no registry to pull from): both are
// parsed as YAML (Debian's python3-yaml, which resolves the anchors and merge keys as Compose
// does), and every node's environment, with the image's own ENV under it, must be accepted by
// the broker's configuration loader as it stands: a misspelt LEVERET_* name or a bad value
// fails here instead of in a container.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS, type Config } from '../src/config';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';

const REPO = path.resolve(__dirname, '..');

interface Service {
  image?: string;
  build?: unknown;
  hostname?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** The file as Compose reads it, with ${VAR:-default} replaced by its default. */
function readCompose(file: string): Compose {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', path.join(REPO, file)],
    { encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  const withDefaults = r.stdout.replace(/\$\{(\w+):-([^}]*)\}/g, (_, _name: string, def: string) => def);
  return JSON.parse(withDefaults) as Compose;
}

/** The runtime image's ENV (Dockerfile), under which the compose environment applies. */
function imageEnv(): Record<string, string> {
  const text = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  const last = text.split(/^FROM /m).pop()!;
  for (const m of last.matchAll(/^ENV (.*)$/gm)) {
    for (const kv of m[1].matchAll(/(\w+)=("[^"]*"|\S*)/g)) env[kv[1]] = kv[2].replace(/^"|"$/g, '');
  }
  return env;
}

const ENV_NAMES = new Set(SETTINGS.map((s) => s.env));

/**
 * The built broker's loadConfig (dist/, as the image runs it: cluster settings are checked by
 * modules it requires at run time) over exactly this environment, nothing of the test's own.
 */
function loadIn(env: Record<string, string>): Config {
  const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(path.join(REPO, 'dist', 'config.js'))}).loadConfig([], JSON.parse(process.argv[1]))))`;
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(env)], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Config;
}

function envOf(s: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

beforeAll(() => {
  const failed = ensurePythonModules(['yaml'], ['python3-yaml'], 'reading the compose files');
  if (failed !== null) throw new Error(failed);
}, INSTALL_TIMEOUT_MS);

describe('docker-compose files', () => {
  it('single node: docker-compose.yml names only existing settings', () => {
    const c = readCompose('docker-compose.yml');
    const s = c.services.leveret;
    const env = envOf(s);
    for (const k of Object.keys(env)) expect(ENV_NAMES, k).toContain(k);
    const config = loadIn({ ...imageEnv(), ...env });
    expect(config.clusterEtcd).toEqual([]);
  });

  it('cluster: three nodes on one etcd, each configured as a distinct cluster member', () => {
    const c = readCompose('docker-compose.cluster.yml');
    const etcd = c.services.etcd;
    expect(etcd.image).toMatch(/^gcr\.io\/etcd-development\/etcd:v3\.\d+\.\d+$/);
    // The etcd image named in the file's header comment, where the reader looks for it.
    expect(fs.readFileSync(path.join(REPO, 'docker-compose.cluster.yml'), 'utf8')).toMatch(/^# .*gcr\.io\/etcd-development\/etcd/m);
    const etcdArgs = new Map(etcd.command!.slice(1).map((a) => a.split('=') as [string, string]));
    expect(etcdArgs.get('--advertise-client-urls')).toBe('http://etcd:2379');
    expect(etcd.healthcheck!.test[0]).toBe('CMD');

    const nodes = Object.entries(c.services).filter(([name]) => name !== 'etcd');
    expect(nodes.map(([n]) => n)).toEqual(['leveret1', 'leveret2', 'leveret3']);
    const names = new Set<string>();
    const hostPorts = new Set<string>();
    for (const [service, s] of nodes) {
      expect(s.build, service).toBe('.');
      expect(s.depends_on?.etcd?.condition, service).toBe('service_healthy');
      const env = envOf(s);
      for (const k of Object.keys(env)) expect(ENV_NAMES, `${service}: ${k}`).toContain(k);
      // What the broker in the container would load: the image's ENV, then the service's.
      const config = loadIn({ ...imageEnv(), ...env });
      expect(config.clusterEtcd, service).toEqual(['http://etcd:2379']);
      expect(config.minIsr, service).toBe(1);
      expect(config.host, service).toBe('0.0.0.0');
      // Other nodes reach it by its service name, on the compose network.
      expect(config.advertiseHost, service).toBe(service);
      expect(s.hostname, service).toBe(service);
      names.add(config.nodeName);
      expect(s.volumes?.[0], service).toMatch(/^\w[\w-]*:\/var\/lib\/leveret$/);
      expect(c.volumes).toHaveProperty(s.volumes![0].split(':')[0]);
      for (const p of s.ports ?? []) {
        const [host, inside] = p.split(':');
        expect([String(config.port), String(config.httpPort)], `${service} ${p}`).toContain(inside);
        hostPorts.add(host);
      }
    }
    expect(names.size).toBe(3);
    expect(hostPorts.size).toBe(6);
  });
});
