import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../logger';
import { Reader } from '../protocol/reader';
import { Writer } from '../protocol/writer';
import type { FieldTable } from '../protocol/types';

/**
 * Durable definitions, as an append-only log of JSON records, one per line behind its
 * crc32: `xxxxxxxx {"op":...}`. Declares and deletes append a record and fsync before
 * they are answered; start-up replays the log and rewrites it compacted. The record kinds
 * leave room for users, vhosts, permissions and policies.
 */
export type Definition =
  | { op: 'exchange'; vhost: string; name: string; type: string; autoDelete: boolean; internal: boolean; args: string }
  | { op: 'exchange.delete'; vhost: string; name: string }
  | { op: 'queue'; vhost: string; name: string; autoDelete: boolean; args: string }
  | { op: 'queue.delete'; vhost: string; name: string }
  | { op: 'policy'; vhost: string; name: string; pattern: string; applyTo: 'queues' | 'exchanges' | 'all'; priority: number; definition: Record<string, unknown> }
  | { op: 'policy.delete'; vhost: string; name: string }
  | BindingDefinition;

export interface BindingDefinition {
  op: 'bind' | 'unbind';
  vhost: string;
  source: string;
  kind: 'queue' | 'exchange';
  destination: string;
  key: string;
  args: string;
}

export function encodeArgs(t: FieldTable): string {
  const w = new Writer();
  w.table(t);
  return Buffer.concat(w.take()).toString('base64');
}

export function decodeArgs(s: string): FieldTable {
  return new Reader().reset(Buffer.from(s, 'base64')).table();
}

const bindingKey = (d: BindingDefinition): string =>
  JSON.stringify([d.vhost, d.source, d.kind, d.destination, d.key, d.args]);

export class DefinitionsLog {
  private fd = -1;
  readonly path: string;

  constructor(dataDir: string, private readonly log: Logger) {
    this.path = join(dataDir, 'definitions.log');
  }

  /** Replays the log into the current definitions (in a valid order) and compacts it. */
  open(): Definition[] {
    const exchanges = new Map<string, Definition>();
    const queues = new Map<string, Definition>();
    const bindings = new Map<string, Definition>();
    const policies = new Map<string, Definition>();
    if (existsSync(this.path)) {
      const lines = readFileSync(this.path, 'utf8').split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (line === '') continue;
        const d = parseLine(line);
        if (d === null) {
          this.log.warn({ file: this.path, line: i + 1 }, 'torn or corrupt definition record ignored');
          continue;
        }
        const key = JSON.stringify([d.vhost, 'name' in d ? d.name : '']);
        switch (d.op) {
          case 'exchange':
            exchanges.set(key, d);
            break;
          case 'exchange.delete':
            exchanges.delete(key);
            for (const [k, b] of bindings) {
              const bd = b as BindingDefinition;
              if (bd.vhost === d.vhost && (bd.source === d.name || (bd.kind === 'exchange' && bd.destination === d.name))) bindings.delete(k);
            }
            break;
          case 'queue':
            queues.set(key, d);
            break;
          case 'queue.delete':
            queues.delete(key);
            for (const [k, b] of bindings) {
              const bd = b as BindingDefinition;
              if (bd.vhost === d.vhost && bd.kind === 'queue' && bd.destination === d.name) bindings.delete(k);
            }
            break;
          case 'bind':
            bindings.set(bindingKey(d), d);
            break;
          case 'policy':
            policies.set(key, d);
            break;
          case 'policy.delete':
            policies.delete(key);
            break;
          case 'unbind':
            bindings.delete(bindingKey(d));
            break;
        }
      }
    }
    // Policies first, so that queues and exchanges are rebuilt with them in force.
    const all = [...policies.values(), ...exchanges.values(), ...queues.values(), ...bindings.values()];
    this.rewrite(all);
    this.fd = openSync(this.path, 'a');
    return all;
  }

  append(d: Definition): void {
    writeSync(this.fd, formatLine(d));
    fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Replaces the file atomically: write aside, fsync, rename, fsync the directory. */
  private rewrite(all: Definition[]): void {
    const tmp = this.path + '.tmp';
    const fd = openSync(tmp, 'w');
    writeSync(fd, all.map(formatLine).join(''));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    fsyncSync(dir);
    closeSync(dir);
  }
}

function formatLine(d: Definition): string {
  const json = JSON.stringify(d);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function parseLine(line: string): Definition | null {
  const json = line.slice(9);
  if (line[8] !== ' ' || crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return null;
  try {
    return JSON.parse(json) as Definition;
  } catch {
    return null;
  }
}
