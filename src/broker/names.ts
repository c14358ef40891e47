import { randomBytes } from 'node:crypto';

/** Server-generated names in RabbitMQ's shape: a prefix and 22 url-safe base64 characters. */
export function generateName(prefix: string): string {
  return prefix + randomBytes(16).toString('base64url');
}

export const isReservedName = (name: string): boolean => name.startsWith('amq.');

/** How RabbitMQ names a resource in error texts. */
export const describeQueue = (name: string, vhost: string): string => `queue '${name}' in vhost '${vhost}'`;
export const describeExchange = (name: string, vhost: string): string => `exchange '${name}' in vhost '${vhost}'`;
