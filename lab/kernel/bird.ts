import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { log } from '../log.js';
import { birdPaths } from '../plan/bird.js';
import { labDir } from '../state/store.js';
import { NETNS_RUN_DIR } from './netns.js';
import { run } from './exec.js';
import { isAlive, processCmdline, processStartTime, stopProcesses } from './processes.js';

/**
 * BIRD, the routing daemon, run by the lab: one per namespace, in the foreground (its pid is the
 * one `ip netns exec` started, as it execs), its log its stderr. Shared by every BGP speaker the
 * lab runs: the pod network's bgp mode today, MetalLB's BGP mode later.
 */

/** A BIRD to start: where, with which command line, and where its log goes. */
export interface BirdStart {
  ns: string;
  argv: string[];
  /** Its control socket (also the mark telling this BIRD from any other: it is in its command line). */
  socket: string;
  log: string;
}

export interface StartedBird {
  pid: number;
  startTime: string;
}

/**
 * Start one BIRD in its namespace; returns at once with its pid, for the caller to record
 * before anything else happens. It outlives this command (detached, its own session): `lab
 * down` stops it. Its readiness is the caller's to poll (birdProtocols).
 */
export function startBird(b: BirdStart): StartedBird {
  mkdirSync(dirname(b.log), { recursive: true });
  const fd = openSync(b.log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', b.ns, ...b.argv], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, LC_ALL: 'C' } });
    child.on('error', (e) => log.warn({ ns: b.ns, err: e.message }, 'bird did not start'));
    child.unref();
    const pid = child.pid ?? 0;
    log.debug({ ns: b.ns, pid, cmd: b.argv.join(' ') }, 'bird started');
    return { pid, startTime: processStartTime(pid) ?? '' };
  } finally {
    closeSync(fd);
  }
}

/** One line of `birdc show protocols`. */
export interface BirdProtocol {
  name: string;
  proto: string;
  /** up, down, start, ... */
  state: string;
  /** For BGP: Established, Active, Connect, ... (and the last error, if any). */
  info: string;
}

/** `show protocols` parsed: the rows after the header ("Name Proto Table State Since Info"). */
export function parseProtocols(text: string): BirdProtocol[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && f[0] !== 'Name' && !/^\d{4}$/.test(f[0]!) && f[0] !== 'BIRD')
    .map(([name, proto, , state, , ...info]) => ({ name: name!, proto: proto!, state: state!, info: info.join(' ') }));
}

/** The protocols a running BIRD reports, through its control socket (no namespace needed). */
export async function birdProtocols(socket: string): Promise<BirdProtocol[] | undefined> {
  const r = await run('birdc', ['-s', socket, 'show', 'protocols'], { allowFailure: true, timeoutMs: 5000 });
  return r.exitCode === 0 ? parseProtocols(r.stdout) : undefined;
}

/** The BGP sessions of a lab host's BIRD (none when it runs no BIRD), with the peer's host name. */
export async function readBgpSessions(lab: string, host: string): Promise<{ peer: string; state: string; info: string }[]> {
  const protocols = (await birdProtocols(birdPaths(labDir(lab), host).socket)) ?? [];
  return protocols.filter((p) => p.proto === 'BGP').map((p) => ({ peer: peerOfProtocol(p.name), state: p.state, info: p.info }));
}

/** The host name a BGP protocol's name stands for (the inverse of birdProtocolName). */
export const peerOfProtocol = (name: string): string => name.replace(/^bgp_/, '').replaceAll('_', '-');

/** The last lines of a BIRD's log, for an error. */
export function birdLogTail(path: string, lines = 8): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Still that BIRD: alive, started when recorded, its socket in its command line, in the lab's namespace. */
export function isThatBird(p: { pid: number; startTime: string; socket: string; ns: string }): boolean {
  if (!isAlive(p.pid) || processStartTime(p.pid) !== p.startTime) return false;
  if (!processCmdline(p.pid).includes(p.socket)) return false;
  try {
    const inode = statSync(`${NETNS_RUN_DIR}/${p.ns}`).ino;
    return readlinkSync(`/proc/${p.pid}/ns/net`) === `net:[${inode}]`;
  } catch {
    return false;
  }
}

/** Stop BIRDs by pid, each only once it is confirmed to be that BIRD. Returns the pids stopped. */
export async function stopBirds(birds: { pid: number; startTime: string; socket: string; ns: string }[]): Promise<number[]> {
  const ours = birds.filter(isThatBird).map((b) => b.pid);
  await stopProcesses(ours);
  return ours;
}
