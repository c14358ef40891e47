import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import { totalmem } from 'node:os';

/**
 * What the process and its host say about resources, read once per scrape. null: not
 * known on this platform (the sample is left out rather than made up).
 */
export interface ProcessReadings {
  openFds: number | null;
  maxFds: number | null;
  residentBytes: number;
  memoryLimitBytes: number;
  diskFreeBytes: number | null;
}

/** Entries of /proc/self/fd, less the one readdir itself holds open (Linux). */
function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

/** The soft limit on open files, from /proc/self/limits (Linux). */
function maxFds(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m === null) return null;
    return m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Leveret has no memory watermark: nothing blocks publishers on memory. The limit that
 * does bind is the container's (cgroup) or else the machine's memory.
 */
function memoryLimit(): number {
  const total = totalmem();
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

/** Bytes an unprivileged writer may still use on the data directory's file system. */
function diskFree(dataDir: string): number | null {
  try {
    const s = statfsSync(dataDir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

export function readProcess(dataDir: string): ProcessReadings {
  return {
    openFds: openFds(),
    maxFds: maxFds(),
    residentBytes: process.memoryUsage.rss(),
    memoryLimitBytes: memoryLimit(),
    diskFreeBytes: diskFree(dataDir),
  };
}
