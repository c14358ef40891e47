/**
 * What the store asked of the file system since start-up, as RabbitMQ's node statistics
 * report it (io_write_count/bytes, io_read_count/bytes, io_sync_count): bytes handed to
 * write calls, not pages the kernel writes back. Plain counters bumped once per system call.
 */
export interface IoCounts {
  writeCount: number;
  writeBytes: number;
  readCount: number;
  readBytes: number;
  syncCount: number;
}

export const ioCounts: IoCounts = { writeCount: 0, writeBytes: 0, readCount: 0, readBytes: 0, syncCount: 0 };
