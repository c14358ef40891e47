// The permission model on its own: RabbitMQ's regex semantics, topic variables, the API
// the HTTP layer and a definitions sink use. Over sockets: test/permissions.test.ts.
import { describe, expect, it } from 'vitest';
import { Permissions, type PermissionChange } from '../src/auth/permissions';
import { CheckCache, CACHE_SIZE } from '../src/auth/permission-cache';
import { Broker } from '../src/broker/broker';

describe('Permissions', () => {
  it('matches as re:run does: an unanchored search, "" meaning ^$', () => {
    const p = new Permissions();
    p.set('/', 'u', { configure: 'rx-', write: '', read: '^a$' });
    expect(p.allows('u', '/', 'configure', 'queue', 'rx-q')).toBe(true);
    expect(p.allows('u', '/', 'configure', 'queue', 'my-rx-q')).toBe(true);
    expect(p.allows('u', '/', 'write', 'queue', 'q')).toBe(false);
    expect(p.allows('u', '/', 'read', 'queue', 'a')).toBe(true);
    expect(p.allows('u', '/', 'read', 'queue', 'ab')).toBe(false);
    expect(p.allows('u', '/v', 'configure', 'queue', 'rx-q')).toBe(false);
    expect(p.allows('other', '/', 'configure', 'queue', 'rx-q')).toBe(false);
  });

  it('names the default exchange amq.default', () => {
    const p = new Permissions();
    p.set('/', 'u', { configure: '', write: '^amq\\.default$', read: '' });
    expect(p.allows('u', '/', 'write', 'exchange', '')).toBe(true);
    expect(() => p.check({ name: 'u' }, '/', 'read', 'exchange', '')).toThrow(
      "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'",
    );
  });

  it('gives vhost access to anyone with an entry, even an all-empty one', () => {
    const p = new Permissions();
    p.set('v', 'u', { configure: '', write: '', read: '' });
    expect(p.canAccessVhost('u', 'v')).toBe(true);
    expect(p.canAccessVhost({ name: 'u' }, '/')).toBe(false);
    p.clear('v', 'u');
    expect(p.canAccessVhost('u', 'v')).toBe(false);
  });

  it('expands {username} and {vhost} in topic permissions; none for the exchange allows all', () => {
    const p = new Permissions();
    p.setTopic('v1', 'ann', 'amq.topic', { write: '^{username}\\.', read: '^{vhost}\\.' });
    expect(p.allowsTopic('ann', 'v1', 'write', 'amq.topic', 'ann.x')).toBe(true);
    expect(p.allowsTopic('ann', 'v1', 'write', 'amq.topic', 'bob.x')).toBe(false);
    expect(p.allowsTopic('ann', 'v1', 'read', 'amq.topic', 'v1.x')).toBe(true);
    expect(p.allowsTopic('ann', 'v1', 'read', 'other', 'anything')).toBe(true);
    expect(() => p.checkTopic('ann', 'v1', 'write', 'amq.topic', 'bob.x')).toThrow(
      "ACCESS_REFUSED - access to topic 'bob.x' in exchange 'amq.topic' in vhost 'v1' refused for user 'ann'",
    );
  });

  it('lists, clears and forgets, telling onChange of each change', () => {
    const p = new Permissions();
    const seen: PermissionChange[] = [];
    p.onChange = (c) => seen.push(c);
    p.set('/', 'a', { configure: '.*', write: '.*', read: '.*' });
    p.set('v', 'a', { configure: '', write: '', read: '' });
    p.set('v', 'b', { configure: '', write: '', read: '' });
    p.setTopic('v', 'a', 'x', { write: '.*', read: '' });
    expect(p.list({ user: 'a' }).map((e) => e.vhost)).toEqual(['/', 'v']);
    expect(p.list({ vhost: 'v' }).map((e) => e.user)).toEqual(['a', 'b']);
    expect(p.listTopic()).toEqual([{ user: 'a', vhost: 'v', exchange: 'x', write: '.*', read: '' }]);
    p.forget({ vhost: 'v' });
    expect(p.list()).toEqual([{ user: 'a', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);
    expect(p.listTopic()).toEqual([]);
    expect(seen.map((c) => `${c.kind} ${c.vhost} ${c.user} ${c.value === null ? 'cleared' : 'set'}`)).toEqual([
      'permission / a set',
      'permission v a set',
      'permission v b set',
      'topic-permission v a set',
      'permission v a cleared',
      'permission v b cleared',
      'topic-permission v a cleared',
    ]);
  });

  it('refuses a pattern that does not compile, and keeps the old one', () => {
    const p = new Permissions();
    p.set('/', 'u', { configure: '.*', write: '.*', read: '.*' });
    expect(() => p.set('/', 'u', { configure: '(', write: '', read: '' })).toThrow(/^Invalid regexp/);
    expect(p.get('/', 'u')?.configure).toBe('.*');
  });

  it('gives the default user full rights on / and nobody else anything', () => {
    const b = new Broker({ defaultUser: 'admin', defaultPass: 'pw', loopbackUsers: [] });
    expect(b.permissions.list()).toEqual([{ user: 'admin', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);
    b.users.add('other', 'pw');
    expect(b.permissions.canAccessVhost('other', '/')).toBe(false);
  });
});

describe('CheckCache (rabbit_channel permission_cache)', () => {
  it('keeps the last 12 passed checks in arrival order; a hit does not refresh', () => {
    const c = new CheckCache();
    c.add('first');
    for (let i = 1; i < CACHE_SIZE; i++) c.add(`k${i}`);
    expect(c.has('first')).toBe(true);
    expect(c.add('one more')).toBe('first');
    expect(c.has('first')).toBe(false);
    expect(c.has('k1')).toBe(true);
    c.clear();
    expect(c.has('k1')).toBe(false);
  });
});
