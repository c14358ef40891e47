/** Samples a process's resident memory and CPU time from /proc (Linux only). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** performance.now() when sampled, ms. */
  at: number;
  /** VmRSS, bytes. */
  rss: number;
  /** VmHWM (the kernel's own peak RSS since the process started), bytes. */
  hwm: number;
  /** User + system CPU time, seconds. */
  cpu: number;
}

function kbField(status: string, name: string): number {
  const i = status.indexOf(name + ':');
  if (i < 0) return 0;
  return parseInt(status.slice(i + name.length + 1), 10) * 1024;
}

/**
 * Bytes the process caused to be written to storage (/proc/PID/io write_bytes): counted by
 * the kernel when a page of the page cache turns dirty (4 KiB granules), whether or not it
 * has reached the disk yet; socket writes are not in it. 0 on tmpfs. Null if unreadable.
 */
export function ioWriteBytes(pid: number): number | null {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'latin1');
    const m = /^write_bytes:\s*(\d+)/m.exec(io);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Returns null once the process is gone. */
export function sampleProc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so utime (field 14) is fields[11] and stime fields[12].
    const cpu = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
    return { at: performance.now(), rss: kbField(status, 'VmRSS'), hwm: kbField(status, 'VmHWM'), cpu };
  } catch {
    return null;
  }
}

/** Keeps the peak RSS and the CPU time between a start and the latest sample. */
export class ProcWatcher {
  first: ProcSample | null = null;
  last: ProcSample | null = null;
  peakRss = 0;
  /** CPU seconds at the start of the measurement window, if marked. */
  cpuMark: number | null = null;
  gone = false;
  /** write_bytes at the start of the measurement window, and at the latest sample. */
  ioMark: number | null = null;
  ioLast: number | null = null;

  constructor(readonly pid: number) {}

  sample(): ProcSample | null {
    const s = sampleProc(this.pid);
    if (!s) {
      this.gone = true;
      return null;
    }
    if (!this.first) this.first = s;
    this.last = s;
    if (s.rss > this.peakRss) this.peakRss = s.rss;
    if (this.ioMark !== null) this.ioLast = ioWriteBytes(this.pid) ?? this.ioLast;
    return s;
  }

  /** Starts the CPU measurement window now. */
  markCpu(): void {
    const s = this.sample();
    if (s) this.cpuMark = s.cpu;
    this.ioMark = ioWriteBytes(this.pid);
    this.ioLast = this.ioMark;
  }

  /** Bytes written to storage since markCpu() (null when /proc/PID/io is not readable). */
  ioWriteSinceMark(): number | null {
    return this.ioMark === null || this.ioLast === null ? null : this.ioLast - this.ioMark;
  }

  cpuSinceMark(): number {
    if (!this.last) return 0;
    return this.last.cpu - (this.cpuMark ?? this.first!.cpu);
  }
}
