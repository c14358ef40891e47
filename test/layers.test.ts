// The layers of src/ as the imports show them: the protocol knows nothing above it, the
// model (broker) never imports the store or the server, and the store reaches into the
// model only through the interfaces the model defines for it (storage.ts). app.ts is the
// composition root: it alone wires store, model, AMQP server and management API together.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '..', 'src');

interface Import {
  from: string; // file, relative to src/
  to: string; // resolved target, relative to src/ (without extension)
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): Import[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: Import[] = [];
  const re = /^(import|export)\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'/gms;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const target = path.relative(SRC, path.resolve(path.dirname(file), m[3]));
    out.push({ from: path.relative(SRC, file), to: target, typeOnly: m[2] !== undefined });
  }
  return out;
}

const layer = (rel: string): string => (rel.includes(path.sep) ? rel.split(path.sep)[0] : rel.replace(/\.ts$/, ''));
const all = sourceFiles(SRC).flatMap(importsOf);

describe('layers of src/', () => {
  it('protocol/ imports nothing from the layers above it', () => {
    const bad = all.filter((i) => layer(i.from) === 'protocol' && layer(i.to) !== 'protocol');
    expect(bad).toEqual([]);
  });

  it('broker/ (the model) never imports store/ or server/', () => {
    const bad = all.filter((i) => layer(i.from) === 'broker' && ['store', 'server', 'http', 'cluster'].includes(layer(i.to)));
    expect(bad).toEqual([]);
  });

  it('store/ uses the model only through broker/storage.ts (and types, for the definitions it writes)', () => {
    const allowed = new Set([path.join('broker', 'storage'), path.join('broker', 'requeue')]);
    const bad = all.filter((i) => layer(i.from) === 'store' && layer(i.to) === 'broker' && !allowed.has(i.to) && !i.typeOnly);
    expect(bad).toEqual([]);
    const store = all.filter((i) => layer(i.from) === 'store' && layer(i.to) === 'server');
    expect(store).toEqual([]);
  });

  it('http/ (the management API) is wired by the composition root (app.ts) only and never touches the store', () => {
    const into = all.filter((i) => layer(i.to) === 'http' && layer(i.from) !== 'http' && layer(i.from) !== 'app');
    expect(into).toEqual([]);
    const out = all.filter((i) => layer(i.from) === 'http' && ['store', 'cluster', 'app'].includes(layer(i.to)));
    expect(out).toEqual([]);
  });

  it('server/ (AMQP) knows nothing of the management API or the composition root', () => {
    const bad = all.filter((i) => layer(i.from) === 'server' && ['http', 'app', 'cli'].includes(layer(i.to)));
    expect(bad).toEqual([]);
  });

  it('ctl/ (the leveret command) is an HTTP client: it imports nothing of the broker (no broker/, store/, server/, http/)', () => {
    const bad = all.filter((i) => layer(i.from) === 'ctl' && layer(i.to) !== 'ctl');
    expect(bad).toEqual([]);
  });

  it('no two layers import each other', () => {
    const edges = new Set(all.filter((i) => layer(i.from) !== layer(i.to)).map((i) => `${layer(i.from)}>${layer(i.to)}`));
    const cycles = [...edges].filter((e) => {
      const [a, b] = e.split('>');
      return edges.has(`${b}>${a}`);
    });
    expect(cycles).toEqual([]);
  });
});
