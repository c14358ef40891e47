import { defineConfig } from 'vitest/config';

// Checks of RabbitMQ's own behaviour (see the file headers); not part of npm test.
export default defineConfig({
  test: { include: ['conformance/**/*.test.ts'], testTimeout: 60_000 },
});
