import { defineConfig } from 'vitest/config';

// npm test runs the suites in test/; conformance/ holds checks meant for RabbitMQ itself.
export default defineConfig({
  test: { include: ['test/**/*.test.ts'] },
});
