// Permission shapes as a pika application meets them (conformance/permissions/
// pika_permissions.py): read-only, write-only, configure-only and regex-limited users,
// made and granted over the HTTP API, get RabbitMQ's 403 texts where they are refused.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';
import { api, putUser } from './helpers/http';

const SCRIPT = path.resolve(__dirname, '..', 'conformance', 'permissions', 'pika_permissions.py');

const SHAPES: Record<string, { configure: string; write: string; read: string }> = {
  ro: { configure: '', write: '', read: '.*' },
  wo: { configure: '', write: '.*', read: '' },
  co: { configure: '.*', write: '', read: '' },
  rx: { configure: '^rx-', write: '^(rx-.*|amq\\.default)$', read: '^rx-' },
};

describe('permissions with pika', () => {
  let broker: StartedBroker;
  let setupError: string | null = null;

  beforeAll(async () => {
    setupError = ensurePythonModules(['pika'], ['python3-pika'], 'the pika permission checks');
    broker = await startBroker();
    for (const [user, perms] of Object.entries(SHAPES)) {
      await putUser(broker.httpPort, user, { password: 'pw', tags: '' }, { access: false });
      const r = await api(broker.httpPort, 'PUT', `/api/permissions/%2F/${user}`, { body: perms });
      if (r.status !== 201) throw new Error(`granting ${user}: ${r.status} ${r.text}`);
    }
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
  });

  it('read-only, write-only, configure-only and regex-limited users are refused as RabbitMQ refuses them', () => {
    if (setupError) expect.fail(setupError);
    const template = `amqp://{user}:pw@127.0.0.1:${broker.port}/%2F`;
    const run = spawnSync(PYTHON, [SCRIPT, template], { encoding: 'utf8', timeout: 60_000 });
    const output = `${run.stdout}${run.stderr}`;
    console.log(output.trim());
    expect(run.status, output).toBe(0);
    expect(output).not.toContain('FAIL');
  }, 90_000);
});
