// tsc compiles only .ts: the dashboard's HTML, CSS and browser modules are copied beside the
// compiled src/http/dashboard.js so that dist/ runs on its own. Stale files go first.
import { cpSync, rmSync } from 'node:fs';

rmSync('dist/http/dashboard', { recursive: true, force: true });
cpSync('src/http/dashboard', 'dist/http/dashboard', { recursive: true });
