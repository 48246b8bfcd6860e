import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'lab', 'cli', 'main.js');
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Integration tests need root; in CI a missing root is a failure, not a skip. */
export function requireRoot(): boolean {
  if (!isRoot && process.env.CI) throw new Error('integration tests must run as root in CI');
  return isRoot;
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run the compiled CLI the way a user does. */
export async function lab(args: string[], opts: { env?: Record<string, string>; timeout?: number; input?: string } = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, env: opts.env, timeout: opts.timeout ?? 60_000, cwd: ROOT, input: opts.input });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * Start the CLI in the background, to signal it. execa would follow a SIGTERM with a SIGKILL
 * after 5 s (forceKillAfterDelay); a rollback under a loaded CI machine can take longer, and the
 * SIGKILL then looked like the CLI dying by the signal itself. The tests judge the CLI's own exit.
 */
export function startLab(args: string[], opts: { env?: Record<string, string> } = {}) {
  return execa(process.execPath, [CLI, ...args], { reject: false, cwd: ROOT, env: opts.env, forceKillAfterDelay: false });
}

export async function sh(file: string, args: string[]): Promise<string> {
  return String((await execa(file, args, { reject: false })).stdout);
}

export async function namespaces(): Promise<string[]> {
  return (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean).sort();
}

/**
 * This lab's processes: its workload process (it carries the workload marker, and its stderr is
 * the log in the lab's state folder, which stays its fd 2 even once the file is deleted) and
 * captures (their pcap path lies under lab-runs/<lab>/). Other labs running at the same time
 * are not counted.
 */
export async function labProcesses(lab: string): Promise<string[]> {
  const out = await sh('ps', ['-eo', 'pid,args']);
  return out.split('\n').filter((l) => {
    if (isTcpdumpWriting(l, `/lab-runs/${lab}/`)) return true;
    if (!l.includes('--kube-packet-lab-workload')) return false;
    try {
      return readlinkSync(`/proc/${l.trim().split(/\s+/)[0]}/fd/2`).includes(`/kube-packet-lab/${lab}/workloads.log`);
    } catch {
      return false; // exited since ps looked
    }
  });
}

/**
 * A `ps -eo pid,args` line of a tcpdump writing a pcap whose path holds `text`: the lab opens each
 * pcap itself and hands it to tcpdump as fd 3 (-w /dev/fd/3), so the path is in fd 3's link, not in args.
 */
export function isTcpdumpWriting(psLine: string, text: string): boolean {
  if (!/\btcpdump\b/.test(psLine)) return false;
  if (psLine.includes(text)) return true;
  try {
    return readlinkSync(`/proc/${psLine.trim().split(/\s+/)[0]}/fd/3`).includes(text);
  } catch {
    return false; // exited since ps looked, or writes no pcap
  }
}

/** The tcpdumps writing a pcap whose path holds `text` (a run folder). */
export async function tcpdumpsWriting(text: string): Promise<string[]> {
  return (await sh('ps', ['-eo', 'pid,args'])).split('\n').filter((l) => isTcpdumpWriting(l, text));
}

const sysctl = (path: string) => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return 'absent';
  }
};

/** A ruleset dump without its comments (timestamps) and packet counters (iptables-save and nft). */
const withoutCounters = (s: string) =>
  s
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[]').replace(/counter packets \d+ bytes \d+/g, 'counter'))
    .join('\n');

/**
 * The host's own network state: links, addresses, routes, policy rules, iptables
 * (counters and timestamps stripped) and the forwarding sysctls. A lab must leave it identical.
 */
export async function hostSnapshot(): Promise<Record<string, string>> {
  return {
    links: await sh('ip', ['-o', 'link', 'show']),
    addresses: await sh('ip', ['-o', 'addr', 'show']),
    routes: await sh('ip', ['route', 'show', 'table', 'all']),
    rules: await sh('ip', ['rule', 'show']),
    iptables: withoutCounters(await sh('iptables-save', [])),
    ip_forward: sysctl('/proc/sys/net/ipv4/ip_forward'),
    all_forwarding: sysctl('/proc/sys/net/ipv4/conf/all/forwarding'),
    bridge_nf: sysctl('/proc/sys/net/bridge/bridge-nf-call-iptables'),
    send_redirects: sysctl('/proc/sys/net/ipv4/conf/all/send_redirects'),
    multipath_hash: sysctl('/proc/sys/net/ipv4/fib_multipath_hash_policy'),
  };
}

/** /proc/<pid>/stat field 22, the start time: tells a process from a later one that reused its pid. */
export function processStartTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/**
 * hostSnapshot, and more of the host's namespace: every address with its details, IPv6 routes,
 * ip6tables, the nftables ruleset (counters stripped), reverse-path filtering and the bridge
 * netfilter switches. Lifetimes that count down (valid_lft, expires) are left out.
 */
export async function thoroughHostSnapshot(): Promise<Record<string, string>> {
  const noLifetimes = (s: string) => s.replace(/(valid_lft|preferred_lft) \d+sec/g, '$1').replace(/expires \d+sec/g, 'expires');
  const bridge = '/proc/sys/net/bridge';
  const bridgeSysctls = existsSync(bridge) ? readdirSync(bridge).sort().map((f) => `${f}=${sysctl(join(bridge, f))}`).join(' ') : 'absent';
  return {
    ...(await hostSnapshot()),
    detailedAddresses: noLifetimes(await sh('ip', ['-d', 'addr', 'show'])),
    routes6: noLifetimes(await sh('ip', ['-6', 'route', 'show', 'table', 'all'])),
    ip6tables: withoutCounters(await sh('ip6tables-save', [])),
    nftables: withoutCounters(await sh('nft', ['list', 'ruleset'])),
    rp_filter: `${sysctl('/proc/sys/net/ipv4/conf/all/rp_filter')} ${sysctl('/proc/sys/net/ipv4/conf/default/rp_filter')}`,
    bridgeSysctls,
  };
}

/**
 * Open slow requests from the lab's client (the pod answers after `delayMs`) until one of them is
 * translated by node1 to `podIP`: an established connection to watch while the endpoints change.
 * `done` resolves to that request's answer; `pending` holds every request sent (await it at the end).
 */
export async function slowConnectionTo(labName: string, to: string, podIP: string, delayMs = 6000): Promise<{ port?: number; done?: Promise<string>; pending: Promise<unknown>[] }> {
  const { execa } = await import('execa');
  const pending: Promise<unknown>[] = [];
  let port = 40000 + Math.floor(Math.random() * 10000);
  for (let round = 0; round < 6; round++) {
    const batch = Array.from({ length: 6 }, () => {
      const p = port++;
      const done = execa('ip', ['netns', 'exec', `${labName}-client`, 'curl', '-sS', '--max-time', '15', '--local-port', String(p), `http://${to}/?delay=${delayMs}`], { reject: false }).then((r) => String(r.stdout));
      pending.push(done);
      return { port: p, done };
    });
    await new Promise((r) => setTimeout(r, 300));
    const ct = JSON.parse((await lab(['conntrack', labName, 'node1', '--json'])).stdout) as { original: { sport: number }; reply: { src: string }; state: string }[];
    const hit = batch.find((b) => ct.some((e) => e.original.sport === b.port && e.reply.src === podIP && e.state === 'ESTABLISHED'));
    if (hit) return { ...hit, pending };
    await Promise.all(batch.map((b) => b.done));
  }
  return { pending };
}

/**
 * The labs of a describe block that runs workshops: a private progress folder (LAB_WORKSHOP_DIR)
 * and the labs downed before its tests and after them; after, none of their namespaces is left.
 */
/** A workshop run against a live lab of a scenario in some modes (test/e2e/workshop-*.test.ts). */
export interface WorkshopCase {
  scenario: string;
  name: string;
  set: string[];
  /** The learner's own request, for "your most recent request". */
  from: string;
  to: string;
  /** Answers of the mode's own questions, by step id, as the lab's rules and tables hold them. */
  expected: Record<string, string>;
}

/** The lab's answer of each step of a skip-through, in order: the rest of each "The lab's answer:" line, without a pod's "(address)". */
export function skippedAnswers(out: string): string[] {
  return [...out.matchAll(/skipped\. The lab's answer: (.+)$/gm)].map((m) => m[1]!.trim().replace(/ \([^)]*\)$/, ''));
}

export function workshopLabs(prefix: string, names: string[]): { dir: () => string; env: () => Record<string, string> } {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    for (const name of names) await lab(['down', name]);
  });
  afterAll(async () => {
    for (const name of names) await lab(['down', name]);
    rmSync(dir, { recursive: true, force: true });
    expect((await namespaces()).filter((n) => names.some((name) => n.startsWith(`${name}-`)))).toEqual([]);
  });
  return { dir: () => dir, env: () => ({ LAB_WORKSHOP_DIR: dir, NO_COLOR: '1' }) };
}

/** `lab verify --json` as the e2e tests read it. */
export type VerifyJson = { passed: number; paths: { name: string; steps: { status: string; title: string; seen: string }[] }[] };

/** Every failed step of a verify result, one line each: `path: step title: what was seen`. */
export const failuresOf = (r: VerifyJson) => r.paths.flatMap((p) => p.steps.filter((s) => s.status === 'fail').map((s) => `${p.name}: ${s.title}: ${s.seen}`));
