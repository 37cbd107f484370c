/**
 * What the orchestrator reads from /proc about the processes it started and the machine: CPU time
 * (all threads of a process), resident memory and its peak, per-core busy time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';

let clockTicks = 0;

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux). */
function ticksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User and system CPU seconds used so far by every thread of `pid` (/proc/<pid>/stat utime, stime). */
export function processCpu(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const hz = ticksPerSecond();
  return { user: Number(fields[14 - 3]) / hz, system: Number(fields[15 - 3]) / hz };
}

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM, ...). */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Resets the peak RSS (VmHWM) of `pid` to its current RSS (Linux >= 4.0). Returns false if refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Busy and total jiffies of one core, from /proc/stat. */
export interface CoreTimes {
  readonly busy: number;
  /** Interrupt and softirq time (network processing of loopback packets lands here). */
  readonly irq: number;
  readonly total: number;
}

export function coreTimes(core: number): CoreTimes {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (line === undefined) return { busy: 0, irq: 0, total: 0 };
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, irq: (irq ?? 0) + (softirq ?? 0), total: busy + (idle ?? 0) + (iowait ?? 0) };
}

/** Share of a core that was busy between two readings (0..1). */
export function coreBusy(a: CoreTimes, b: CoreTimes): number {
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : 0;
}

/** Share of a core spent in interrupts and softirqs between two readings (0..1). */
export function coreIrq(a: CoreTimes, b: CoreTimes): number {
  const total = b.total - a.total;
  return total > 0 ? (b.irq - a.irq) / total : 0;
}

/** The soft limit on open files of this process. */
export function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** The machine, as the results record it. */
export function machine(): Record<string, unknown> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
  const memTotal = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return {
    cpuModel: model,
    cpuMHz: mhz === undefined ? undefined : Number(mhz),
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    memTotalMiB: memTotal === undefined ? undefined : Math.round(Number(memTotal) / 1024),
    kernel: release(),
    node: process.version,
    loadavgAtStart: loadavg(),
  };
}

/** CLOCK_MONOTONIC in microseconds: the clock of V8's CPU profiles, shared by every process. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
