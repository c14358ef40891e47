import type { FieldTable } from '../protocol/types';

/**
 * Test-only: lets a test make one connection meet an unexpected exception (a plain Error,
 * as a bug would throw) at a chosen place, to show that only that connection pays for it.
 * Off unless the broker was started with LEVERET_TEST_FAULTS=1; the connection then
 * names the place in its client property `x-leveret-test-fault`.
 */
export const FAULTS_ENABLED = process.env.LEVERET_TEST_FAULTS === '1';

export type FaultPlace = 'method' | 'heartbeat' | 'drain' | 'socket-close' | 'flush';

export function injectFault(clientProperties: FieldTable, place: FaultPlace): void {
  if (FAULTS_ENABLED && clientProperties['x-leveret-test-fault'] === place) throw new Error(`injected fault (${place})`);
}
