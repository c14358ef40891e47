#!/usr/bin/python3
"""AMQP 0-9-1 conformance runner (pika BlockingConnection, RabbitMQ semantics).

    /usr/bin/python3 conformance/run.py --url amqp://guest:guest@127.0.0.1:5672/%2F

Discovers plain functions ``def test_xxx(url)`` in conformance/cases/*.py
(files starting with ``_`` are skipped), runs each in its own Python
subprocess with a timeout, prints ``PASS name`` / ``FAIL name: reason`` per
case and ends with the line ``N passed, M failed``.  Exit status: 0 when all
selected cases passed, 1 when any failed, 2 on usage errors (including a
selection that matches no case).
"""

import argparse
import concurrent.futures
import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # keep conformance/ free of __pycache__

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, 'cases')
DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672/%2F'
RESULT_MARK = '@@CONFORMANCE-RESULT@@ '


def load_module(mod_name):
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    path = os.path.join(CASES_DIR, mod_name + '.py')
    spec = importlib.util.spec_from_file_location('cases.' + mod_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def discover():
    """[(name, module, func_name, import_error)] in file/definition order."""
    cases = []
    for fn in sorted(os.listdir(CASES_DIR)):
        if not fn.endswith('.py') or fn.startswith('_'):
            continue
        mod_name = fn[:-3]
        try:
            module = load_module(mod_name)
        except Exception:
            cases.append((mod_name + '.<import>', mod_name, None,
                          traceback.format_exc()))
            continue
        funcs = [(getattr(f, '__code__').co_firstlineno, n)
                 for n, f in vars(module).items()
                 if n.startswith('test_') and callable(f)
                 and getattr(f, '__module__', None) == module.__name__]
        for _, n in sorted(funcs):
            cases.append(('%s.%s' % (mod_name, n), mod_name, n, None))
    return cases


def one_line(s, limit=400):
    s = ' '.join(str(s).split())
    return s if len(s) <= limit else s[:limit - 3] + '...'


# -- child: run exactly one case -------------------------------------------

def child(spec, url):
    mod_name, func_name = spec.split(':', 1)
    started = time.monotonic()
    try:
        func = getattr(load_module(mod_name), func_name)
        func(url)
    except BaseException as e:  # noqa: B902 - report everything
        tb = traceback.format_exc()
        if isinstance(e, AssertionError):
            reason = str(e) or _assert_location(e)
        else:
            reason = '%s: %s' % (type(e).__name__, str(e) or repr(e))
        res = {'ok': False, 'reason': one_line(reason), 'traceback': tb}
    else:
        res = {'ok': True}
    res['duration'] = time.monotonic() - started
    sys.stdout.flush()
    sys.stdout.write('\n' + RESULT_MARK + json.dumps(res) + '\n')
    sys.stdout.flush()
    return 0 if res['ok'] else 1


def _assert_location(e):
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        fr = tb[-1]
        return 'assertion failed at %s:%s: %s' % (
            os.path.basename(fr.filename), fr.lineno, fr.line)
    return 'assertion failed'


# -- parent ------------------------------------------------------------------

def run_case(case, url, timeout, deadline=None):
    name, mod_name, func_name, import_error = case
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            return {'name': name, 'ok': False, 'duration': 0.0, 'output': '',
                    'reason': 'not run: overall time budget (--budget) exhausted'}
        timeout = max(1.0, min(timeout, left))
    if import_error:
        return {'name': name, 'ok': False, 'duration': 0.0,
                'reason': 'cannot import cases/%s.py: %s'
                          % (mod_name, one_line(import_error.strip().splitlines()[-1])),
                'output': import_error}
    cmd = [sys.executable, os.path.abspath(__file__),
           '--_child', '%s:%s' % (mod_name, func_name), '--url', url]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        out = proc.stdout.decode('utf-8', 'replace')
        rc = proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode('utf-8', 'replace')
        return {'name': name, 'ok': False, 'duration': time.monotonic() - started,
                'reason': 'timeout after %gs' % timeout, 'output': out}
    res = None
    lines = out.splitlines()
    for line in reversed(lines):
        if line.startswith(RESULT_MARK):
            res = json.loads(line[len(RESULT_MARK):])
            break
    output = '\n'.join(l for l in lines if not l.startswith(RESULT_MARK)).strip()
    if res is None:
        res = {'ok': False, 'reason': 'case process exited %s without a result%s'
               % (rc, (': ' + one_line(lines[-1])) if lines else '')}
    elif res['ok'] and rc != 0:
        res = {'ok': False, 'reason': 'case process exited %s' % rc}
    if res.get('traceback'):
        output = (output + '\n' + res['traceback']).strip()
    return {'name': name, 'ok': res['ok'], 'reason': res.get('reason', ''),
            'duration': time.monotonic() - started, 'output': output}


def write_junit(path, results, total_time, url):
    suite = ET.Element('testsuite', name='amqp-conformance', tests=str(len(results)),
                       failures=str(sum(1 for r in results if not r['ok'])),
                       errors='0', skipped='0', time='%.3f' % total_time)
    props = ET.SubElement(suite, 'properties')
    ET.SubElement(props, 'property', name='url', value=_redact(url))
    for r in results:
        mod, _, func = r['name'].partition('.')
        tc = ET.SubElement(suite, 'testcase', classname=mod, name=func,
                           time='%.3f' % r['duration'])
        if not r['ok']:
            f = ET.SubElement(tc, 'failure', message=r['reason'])
            f.text = r.get('output', '')
        elif r.get('output'):
            ET.SubElement(tc, 'system-out').text = r['output']
    ET.ElementTree(suite).write(path, encoding='utf-8', xml_declaration=True)


def _redact(url):
    import urllib.parse
    p = urllib.parse.urlsplit(url)
    if p.password:
        netloc = p.netloc.replace(':' + p.password + '@', ':***@')
        return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    return url


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--url', default=os.environ.get('CONFORMANCE_URL', DEFAULT_URL),
                    help='broker URL, e.g. amqp://guest:guest@127.0.0.1:5672/%%2F '
                         '(default: $CONFORMANCE_URL or %(default)s)')
    ap.add_argument('-k', action='append', default=[], metavar='SUBSTRING',
                    help='run only cases whose name (module.test_func) contains '
                         'SUBSTRING; repeatable (any match selects)')
    ap.add_argument('-x', '--exclude', action='append', default=[], metavar='SUBSTRING',
                    help='skip cases whose name contains SUBSTRING; repeatable')
    ap.add_argument('-j', '--jobs', type=int, default=1,
                    help='cases run in parallel (default 1)')
    ap.add_argument('--timeout', type=float, default=20.0,
                    help='per-case timeout in seconds (default 20)')
    ap.add_argument('--budget', type=float, default=None, metavar='SECONDS',
                    help='overall time budget: cases not started (or cut short) '
                         'when it runs out count as failed (default: none)')
    ap.add_argument('--junit', metavar='FILE', help='also write a JUnit XML report')
    ap.add_argument('--json', metavar='FILE', help='also write a JSON report')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='print the output/traceback of failing cases')
    ap.add_argument('--list', action='store_true', help='list the cases and exit')
    ap.add_argument('--_child', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        return child(args._child, args.url)

    cases = discover()
    if args.k:
        cases = [c for c in cases if any(k in c[0] for k in args.k)]
    if args.exclude:
        cases = [c for c in cases if not any(x in c[0] for x in args.exclude)]
    if args.list:
        for c in cases:
            print(c[0])
        return 0
    if not cases:
        print('no case selected', file=sys.stderr)
        print('0 passed, 0 failed')
        return 2

    started = time.monotonic()
    deadline = started + args.budget if args.budget else None
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, c, args.url, args.timeout, deadline)
                   for c in cases]
        for fut in futures:  # report in discovery order
            r = fut.result()
            results.append(r)
            if r['ok']:
                print('PASS %s' % r['name'], flush=True)
            else:
                print('FAIL %s: %s' % (r['name'], r['reason']), flush=True)
                if args.verbose and r.get('output'):
                    for line in r['output'].splitlines():
                        print('    ' + line)
                    sys.stdout.flush()
    total = time.monotonic() - started
    passed = sum(1 for r in results if r['ok'])
    failed = len(results) - passed

    if args.junit:
        write_junit(args.junit, results, total, args.url)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'url': _redact(args.url), 'passed': passed, 'failed': failed,
                       'seconds': round(total, 3), 'cases': results}, f, indent=2)

    print('# %d cases in %.1fs against %s' % (len(results), total, _redact(args.url)))
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
