/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and sums self time per function and
 * per source file, plus the folded stacks flame-graph tools read (speedscope, flamegraph.pl,
 * inferno: one line "root;caller;callee <µs>" per distinct stack).
 */
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  where: string;
  selfUs: number;
}

export interface ProfileSummary {
  totalUs: number;
  /** Time V8 attributes to no JavaScript: `(idle)` is the event loop waiting. */
  idleUs: number;
  gcUs: number;
  programUs: number;
  functions: Row[];
  files: Row[];
  folded: string;
}

/** Paths under the project print relative to it; Node internals keep their `node:` name. */
function place(url: string, line: number, root: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const shown = path.startsWith(root) ? relative(root, path) : path;
  return `${shown}:${line + 1}`;
}

function fileOf(url: string, root: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith(root) ? relative(root, path) : path;
}

export function summarise(profile: CpuProfile, root: string): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }

  const fns = new Map<string, Row>();
  const files = new Map<string, Row>();
  const folded = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  let gcUs = 0;
  let programUs = 0;
  for (const [id, us] of self) {
    if (us <= 0) continue;
    const node = byId.get(id);
    if (node === undefined) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    if (name === '(idle)') idleUs += us;
    else if (name === '(garbage collector)') gcUs += us;
    else if (name === '(program)') programUs += us;
    const where = place(url, lineNumber, root);
    const key = `${name} ${where}`;
    const row = fns.get(key) ?? { name, where, selfUs: 0 };
    row.selfUs += us;
    fns.set(key, row);
    const file = fileOf(url, root);
    const frow = files.get(file) ?? { name: file, where: '', selfUs: 0 };
    frow.selfUs += us;
    files.set(file, frow);

    const stack: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      stack.push(f.functionName === '' ? '(anonymous)' : f.functionName);
    }
    const line = stack.reverse().join(';');
    folded.set(line, (folded.get(line) ?? 0) + us);
  }
  const desc = (a: Row, b: Row) => b.selfUs - a.selfUs;
  return {
    totalUs,
    idleUs,
    gcUs,
    programUs,
    functions: [...fns.values()].sort(desc),
    files: [...files.values()].sort(desc),
    folded: [...folded].map(([stack, us]) => `${stack} ${Math.round(us)}`).join('\n') + '\n',
  };
}
