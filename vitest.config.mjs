import { defineConfig } from 'vitest/config';

// npm test runs the suites in test/; conformance/ holds checks meant for RabbitMQ itself.
// Coverage (`npm run coverage`, i.e. `npm test -- --coverage` under scripts/coverage.mjs) records here
// only what runs inside the vitest workers; the brokers the tests spawn are counted through
// NODE_V8_COVERAGE and merged in by scripts/coverage-report.mjs.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: [['json', { file: 'coverage-final.json' }]],
      reportsDirectory: 'coverage/in-process',
      reportOnFailure: true,
    },
  },
});
