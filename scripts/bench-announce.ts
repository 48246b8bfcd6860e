/**
 * The announcement benchmark (`bench.js announce [rounds]`): how long the router takes to follow
 * MetalLB's speakers. `lab up loadbalancer-local` in loadBalancer.mode bgp and l2, then rounds of
 * `lab kill` and `lab revive`: in bgp node2 withdraws 10.240.0.100/32 and announces it again (the
 * router's multipath route losing and regaining a next hop), in l2 the leader node1 loses its pod
 * and node2 takes over with a gratuitous ARP, then node1 takes it back (the router's neighbour
 * entry moving). Each verb reports (--json) the time from reconfiguring the speakers to the router
 * matching. Prints min / median / max. Root only, inside its own lab names.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AnnouncementSync } from '../lab/api/announcements.js';
import { PROJECT_ROOT } from '../lab/util/project.js';

const exec = promisify(execFile);
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
const lab = (args: string[]) => exec(process.execPath, [cli, ...args], { maxBuffer: 16 * 1024 * 1024 });

/** The router's following time of one verb: its route (bgp) or neighbour entry (l2) wait. */
async function followMs(args: string[]): Promise<number> {
  const { stdout } = await lab([...args, '--json']);
  const sync = (JSON.parse(stdout) as { announced?: AnnouncementSync }).announced;
  const waits = [...(sync?.routes ?? []), ...(sync?.neighbours ?? [])];
  if (waits.length === 0 || waits.some((w) => !w.settled)) throw new Error(`${args.join(' ')}: the router did not follow (${JSON.stringify(waits)})`);
  return Math.max(...waits.map((w) => w.ms));
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${Math.round(s[0]!)} ms, median ${Math.round(s[Math.floor(s.length / 2)]!)} ms, max ${Math.round(s[s.length - 1]!)} ms`;
};

export async function announceBenchmark(rounds: number): Promise<void> {
  console.log(`kube-packet-lab announcement benchmark: loadbalancer-local, ${rounds} kill/revive rounds per mode, node ${process.version}`);
  for (const [mode, pod] of [['bgp', 'web-2'], ['l2', 'web-1']] as const) {
    const name = `bench-mlb-${mode}`;
    await lab(['down', name]).catch(() => undefined);
    const kills: number[] = [];
    const revives: number[] = [];
    try {
      await lab(['up', 'loadbalancer-local', '--name', name, '--set', `loadBalancer.mode=${mode}`]);
      // The router must know the IP's MAC before there is an entry to move (l2).
      await lab(['probe', name, '-n', '2']);
      for (let i = 0; i < rounds; i++) {
        kills.push(await followMs(['kill', name, pod]));
        revives.push(await followMs(['revive', name, pod]));
      }
    } finally {
      await lab(['down', name]).catch(() => undefined);
    }
    console.log(`  ${mode}: router followed lab kill ${pod}   ${stats(kills)}`);
    console.log(`  ${mode}: router followed lab revive ${pod} ${stats(revives)}`);
  }
}
