/**
 * The memory high watermark and the disk free limit as settings spell them, RabbitMQ's
 * way: a fraction of the machine's memory ("0.4") or an amount ("512MB", "1GiB",
 * "536870912"); the disk limit also relative to memory ("mem_relative:1.5").
 */

/** RabbitMQ's information units: k/M/G (and kiB/MiB/GiB) are powers of 1024, kB/MB/GB powers of 1000. */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/** A limit before the machine's memory is known: an amount, or a fraction of memory. */
export type ResourceLimit = { bytes: number } | { ofMemory: number };

/**
 * "0.4" (a fraction of memory: a plain number up to 1), "512MB", "1GiB" or a plain
 * byte count above 1. Returns an error message for anything else.
 */
export function parseMemoryWatermark(text: string): ResourceLimit | string {
  const t = text.trim();
  if (/^(0|1)?(\.\d+)?$/.test(t) && t !== '' && t !== '.') {
    const f = Number(t);
    if (f >= 0 && f <= 1) return { ofMemory: f };
  }
  const bytes = parseAmount(t);
  return bytes === null ? 'must be a fraction of memory from 0 to 1 (e.g. 0.4) or an amount (e.g. 512MB, 2GiB)' : { bytes };
}

/** "50MB", "1GiB", a byte count, or "mem_relative:1.5" (a multiple of memory). */
export function parseDiskFreeLimit(text: string): ResourceLimit | string {
  const t = text.trim();
  const rel = /^mem_relative:\s*(\d+(\.\d+)?|\.\d+)$/.exec(t);
  if (rel !== null) return { ofMemory: Number(rel[1]) };
  const bytes = parseAmount(t);
  return bytes === null ? 'must be an amount (e.g. 50MB, 1GB) or mem_relative:<multiple of memory> (e.g. mem_relative:1.0)' : { bytes };
}

/** An amount of bytes with an optional unit, or null. */
export function parseAmount(text: string): number | null {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (m === null) return null;
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** The limit in bytes, given the memory available to the broker. */
export function resolveLimit(limit: ResourceLimit, memory: number): number {
  return 'bytes' in limit ? limit.bytes : Math.floor(limit.ofMemory * memory);
}
