// Line coverage of src/ as the broker really runs, from two sources:
//  - coverage/in-process/coverage-final.json: what vitest's v8 provider saw inside its workers
//    (tests that import src/ directly, e.g. the store and the in-process Server);
//  - coverage/v8/*.json: what every other node process wrote through NODE_V8_COVERAGE, of which we
//    keep the scripts under dist/ (the brokers and `leveret` commands the tests spawn), mapped back
//    to src/ through tsc's source maps.
// Both are converted with ast-v8-to-istanbul and the parser vitest's provider uses, so a statement
// means the same thing in both. The two transpilers (esbuild in vitest, tsc for dist/) map a
// statement's start to the same place in src/ but not always its end, so the maps are merged by
// position (istanbul's own merge keys on the whole range and would count such a statement twice);
// a line is a line either way, so the line figures, which the gate uses, do not depend on that.
// Files no process loaded count as wholly uncovered. Writes coverage/coverage-final.json,
// coverage-summary.json, coverage.txt and html/; prints the table and the total for src/.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mergeProcessCovs } from '@bcoe/v8-coverage';
import convert from 'ast-v8-to-istanbul';
import libCoverage from 'istanbul-lib-coverage';
import libReport from 'istanbul-lib-report';
import reports from 'istanbul-reports';
import { parseAstAsync } from 'vitest/node';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'coverage');
const V8_DIR = path.join(OUT, 'v8');
const IN_PROCESS = path.join(OUT, 'in-process', 'coverage-final.json');
const DIST_URL = pathToFileURL(path.join(ROOT, 'dist')).href + '/';

/** src/x/y.ts for dist/x/y.js, or undefined when the script is not compiled from src/ (dashboard assets). */
function sourceOf(distFile) {
  const rel = path.relative(path.join(ROOT, 'dist'), distFile);
  const ts = path.join(ROOT, 'src', rel.replace(/\.js$/, '.ts'));
  return existsSync(ts) && existsSync(`${distFile}.map`) ? ts : undefined;
}

/** Every dist/ script's merged V8 coverage across the processes that wrote NODE_V8_COVERAGE files. */
function spawnedCoverage() {
  let merged = { result: [] };
  const files = existsSync(V8_DIR) ? readdirSync(V8_DIR).filter((f) => f.endsWith('.json')) : [];
  for (const f of files) {
    let data;
    try {
      data = JSON.parse(readFileSync(path.join(V8_DIR, f), 'utf8'));
    } catch {
      continue; // a process killed while writing: its file is cut short
    }
    const result = data.result.filter((s) => s.url.startsWith(DIST_URL));
    if (result.length > 0) merged = mergeProcessCovs([merged, { result }]);
  }
  return { processes: files.length, scripts: new Map(merged.result.map((s) => [fileURLToPath(s.url), s.functions])) };
}

/** tsc's CommonJS scaffolding (require() bindings, `exports.x = x`, `exports.x = void 0`) is no statement of ours. */
function ignoreNode(node, type) {
  if (type !== 'statement') return;
  if (node.type === 'VariableDeclarator' && node.init && isRequire(node.init)) return true;
  if (node.type === 'ExpressionStatement' && isExportBinding(node.expression)) return 'ignore-this-and-nested-nodes';
}

function isExportBinding(expr) {
  if (expr.type !== 'AssignmentExpression' || expr.left.type !== 'MemberExpression') return false;
  if (expr.left.object.type !== 'Identifier' || expr.left.object.name !== 'exports') return false;
  const value = expr.right;
  return value.type === 'Identifier' || (value.type === 'UnaryExpression' && value.operator === 'void') || isExportBinding(value);
}

function isRequire(expr) {
  if (expr.type !== 'CallExpression') return false;
  if (expr.callee.type === 'Identifier' && expr.callee.name === 'require') return true;
  // __importDefault(require('x')) / __importStar(require('x'))
  return expr.arguments.length === 1 && isRequire(expr.arguments[0]);
}

async function convertDistFile(distFile, functions) {
  const url = pathToFileURL(distFile).href;
  const code = readFileSync(distFile, 'utf8');
  const map = JSON.parse(readFileSync(`${distFile}.map`, 'utf8'));
  map.sources = map.sources.map((s) => new URL((map.sourceRoot ?? '') + s, url).href);
  delete map.sourceRoot;
  return convert({
    code,
    sourceMap: map,
    ast: await parseAstAsync(code),
    wrapperLength: 0,
    coverage: { url, functions },
    ignoreNode,
  });
}

function* distScripts(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* distScripts(p);
    else if (e.name.endsWith('.js') && sourceOf(p)) yield p;
  }
}

const at = (pos) => `${pos.line}:${pos.column}`;
const span = (loc) => `lines ${loc.start.line}-${loc.end.line}`;
/** A location whose end the source map resolved is the better one to show. */
const better = (a, b) => (a.end.column === null && b.end.column !== null ? b : a);

/**
 * Adds the counts of file coverage `from` into `into` (both istanbul FileCoverage data). An entry is
 * known by a few positions, most exact first; it is the same as the first entry of `into` that shares
 * one and was not already matched (esbuild and tsc agree on a statement's start, on a function's name
 * or its body, or at worst on the lines it spans; never on all of them).
 */
function mergeByPosition(into, from) {
  const merge = (mapKey, hitsKey, keysOf, add, pick) => {
    const index = new Map();
    const remember = (id, loc) => {
      for (const k of keysOf(loc)) index.set(k, [...(index.get(k) ?? []), id]);
    };
    for (const [id, loc] of Object.entries(into[mapKey])) remember(id, loc);
    const matched = new Set();
    let next = Object.keys(into[mapKey]).length;
    for (const [id, loc] of Object.entries(from[mapKey])) {
      let mine;
      for (const k of keysOf(loc)) {
        mine = (index.get(k) ?? []).find((m) => !matched.has(m));
        if (mine !== undefined) break;
      }
      if (mine === undefined) {
        mine = String(next++);
        into[mapKey][mine] = loc;
        into[hitsKey][mine] = from[hitsKey][id];
        remember(mine, loc);
      } else {
        into[hitsKey][mine] = add(into[hitsKey][mine], from[hitsKey][id]);
        into[mapKey][mine] = pick(into[mapKey][mine], loc);
      }
      matched.add(mine);
    }
  };
  const sum = (a, b) => a + b;
  merge('statementMap', 's', (loc) => [at(loc.start), span(loc)], sum, better);
  merge(
    'fnMap',
    'f',
    (fn) => [`decl ${at(fn.decl.start)}`, `body ${at(fn.loc.start)}`, span(fn.loc)],
    sum,
    (a, b) => ({
      ...a,
      loc: better(a.loc, b.loc),
    }),
  );
  merge(
    'branchMap',
    'b',
    (br) => [
      `${br.type} ${br.locations.length} ${at(br.locations[0]?.start ?? br.loc.start)}`,
      `${br.type} ${br.locations.length} ${span(br.loc)}`,
    ],
    (a, b) => a.map((n, i) => n + (b[i] ?? 0)),
    (a) => a,
  );
}

function mergeInto(all, coverageData) {
  for (const [file, data] of Object.entries(coverageData)) {
    if (all[file] === undefined) all[file] = structuredClone(data);
    else mergeByPosition(all[file], data);
  }
}

export async function buildReport() {
  const all = {};
  if (existsSync(IN_PROCESS)) mergeInto(all, JSON.parse(readFileSync(IN_PROCESS, 'utf8')));
  const { processes, scripts } = spawnedCoverage();
  // Every compiled file, also those no process loaded: they count as uncovered.
  for (const distFile of distScripts(path.join(ROOT, 'dist'))) {
    mergeInto(all, await convertDistFile(distFile, scripts.get(distFile) ?? []));
  }
  const map = libCoverage.createCoverageMap(all);
  map.filter((f) => f.startsWith(path.join(ROOT, 'src') + path.sep) && f.endsWith('.ts') && existsSync(f));

  const context = libReport.createContext({ dir: OUT, coverageMap: map, defaultSummarizer: 'nested' });
  writeFileSync(path.join(OUT, 'coverage-final.json'), JSON.stringify(map.toJSON()));
  reports.create('json-summary').execute(context);
  reports.create('text', { file: 'coverage.txt' }).execute(context);
  reports.create('html', { subdir: 'html' }).execute(context);
  process.stdout.write(readFileSync(path.join(OUT, 'coverage.txt'), 'utf8'));
  const total = map.getCoverageSummary().lines;
  console.log(
    `src/ lines: ${total.pct} % (${total.covered}/${total.total}); V8 coverage files from ${processes} spawned or worker processes`,
  );
  return total;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildReport();
