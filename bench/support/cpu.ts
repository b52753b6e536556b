/**
 * CPU time from /proc, for benchmarks that share the machine with the servers they talk to: what
 * this process's finished children used, and what a tree of live processes (a server and its
 * sessions) has used so far. Linux adds a reaped child's time to its parent's cutime/cstime, so a
 * live tree's sum counts its finished sessions too.
 */
import { readdir, readFile } from "node:fs/promises";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
const TICKS = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in seconds. */
  cpu: number;
  /** cutime + cstime (reaped children only), in seconds. */
  children: number;
}

async function procStat(pid: number | "self"): Promise<ProcStat | undefined> {
  let stat;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  const ticks = (i: number) => (f[i] ?? 0) / TICKS;
  const children = ticks(13) + ticks(14);
  return { ppid: f[1] ?? 0, cpu: ticks(11) + ticks(12) + children, children };
}

/** CPU seconds this process's reaped children have used (a spawned command, once it exited). */
export async function childrenCpuSeconds(): Promise<number> {
  return (await procStat("self"))?.children ?? 0;
}

/** The own CPU seconds (utime + stime) and parent of every live process below `root`, by pid. */
async function treeOwnCpu(root: number): Promise<Map<number, { cpu: number; ppid: number }>> {
  const stats = new Map<number, ProcStat>();
  for (const name of await readdir("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = await procStat(pid);
    if (stat) stats.set(pid, stat);
  }
  const below = (pid: number): boolean => {
    for (let p = stats.get(pid)?.ppid; p !== undefined && p > 1; p = stats.get(p)?.ppid)
      if (p === root) return true;
    return false;
  };
  const own = new Map<number, { cpu: number; ppid: number }>();
  for (const [pid, stat] of stats)
    if (below(pid)) own.set(pid, { cpu: stat.cpu - stat.children, ppid: stat.ppid });
  return own;
}

export interface TreeCpu {
  /** Leaves out this process and those below it (a client started meanwhile). */
  except(pid: number): void;
  /** Stops watching: the CPU seconds used since the watch started. */
  stop(): Promise<number>;
}

/**
 * Watches the CPU the processes below `root` use. Each process's own time is sampled every
 * `everyMs` and its last sample kept once it is gone: a server's finished sessions are not always
 * reaped in a way that adds their time to their parent's (an sshd session's was not), so a
 * parent's cutime cannot be trusted. What a session uses in the last `everyMs` of its life is missed.
 */
export async function watchTreeCpu(root: number, everyMs = 100): Promise<TreeCpu> {
  const first = await treeOwnCpu(root);
  const last = new Map(first);
  const excluded = new Set<number>();
  const stopping = new AbortController();
  const sample = async () => {
    for (const [pid, seen] of await treeOwnCpu(root)) last.set(pid, seen);
  };
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      await sample();
    }
  })();
  const isExcluded = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p !== root; p = last.get(p)?.ppid)
      if (excluded.has(p)) return true;
    return false;
  };
  return {
    except: (pid) => excluded.add(pid),
    async stop() {
      stopping.abort();
      await loop;
      await sample();
      let total = 0;
      for (const [pid, { cpu }] of last) if (!isExcluded(pid)) total += cpu - (first.get(pid)?.cpu ?? 0);
      return total;
    },
  };
}
