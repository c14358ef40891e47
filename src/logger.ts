import pino from 'pino';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout through pino's default destination. Pino flushes that
 * destination on process exit, so a fatal line logged just before exit is not lost.
 */
export function createLogger(level: string): Logger {
  return pino({ level });
}
