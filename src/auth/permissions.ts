import type { User } from './users';

export type Permission = 'configure' | 'write' | 'read';

/**
 * Every AMQP operation asks here before touching a resource, so that per-vhost
 * configure/write/read permissions (RabbitMQ's regex triple) slot in without touching the
 * channel code. Until users and permissions can be managed, every user has full rights
 * on every vhost, which is what RabbitMQ gives its default user.
 */
export class Permissions {
  check(_user: User, _vhost: string, _permission: Permission, _kind: 'queue' | 'exchange', _name: string): void {
    // Full permissions: nothing to refuse yet.
  }

  canAccessVhost(_user: User, _vhost: string): boolean {
    return true;
  }
}
