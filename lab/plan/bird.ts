import { join } from 'node:path';

/**
 * BIRD 2 configurations, as text: pure, so each one is unit-tested and parsed by `bird -p`.
 * Written for the pod network's bgp mode (docs/pod-network.md) and meant to be shared by any
 * BGP speaker the lab runs (MetalLB's BGP mode announces Service IPs the same way).
 */

/** Short timers: a BIRD that stops has its routes withdrawn by its peers within the hold time. */
export const BGP_TIMERS = {
  /** Seconds without a message before a peer is declared down (BGP's minimum is 3). */
  hold: 3,
  keepalive: 1,
  /**
   * Seconds before the first attempt to open a session. BIRD 2.0 waits at least 1 s whatever
   * is configured (its log says "Connect delayed by 1 seconds" for 0): most of bgp mode's extra
   * time in `up`.
   */
  connectDelay: 1,
  /** Seconds between attempts to open a session, and before one after an error. */
  connectRetry: 1,
} as const;

/** One BGP session, seen from this speaker. */
export interface BirdPeer {
  /** The peer's host name, e.g. "node1" (its protocol is birdProtocolName of it). */
  name: string;
  localAddress: string;
  localAs: number;
  address: string;
  as: number;
  /** Whether routes learned from this peer are accepted (a router) or ignored (a node, which routes by default). */
  imports: boolean;
  /** Whether this speaker's own prefixes are announced to this peer. */
  exports: boolean;
  /**
   * A dual-stack cluster: the session carries IPv6 too (MP-BGP, RFC 4760: an ipv6 channel beside
   * the ipv4 one on the same IPv4 session), with this speaker's IPv6 address on the shared network
   * as the next hop of what it announces (an IPv4 session has no IPv6 address of its own to give;
   * a peer that announces nothing, the router, needs none).
   */
  nextHop6?: string;
  /**
   * Wait for the peer to connect, never dial it. The router is passive: dialling a node whose
   * BIRD is not up yet fails, and BIRD then holds the whole session down for its error wait.
   */
  passive: boolean;
}

export interface BirdConfig {
  /** The router id: the speaker's own address. */
  routerId: string;
  /** Prefixes this speaker originates (static blackhole routes, exported to BGP, never installed). */
  announces: string[];
  /** IPv6 prefixes it originates the same way (a dual-stack cluster's podCIDR6), over the peers' ipv6 channels. */
  announces6?: string[];
  peers: BirdPeer[];
  /** Install the routes learned by BGP in the kernel's main table (they show as `proto bird`). */
  installsLearned: boolean;
  /**
   * Install one multipath route per prefix, a next hop per peer announcing it (ECMP), instead of
   * the best path alone: what a router in front of MetalLB's BGP speakers does.
   */
  mergesPaths?: boolean;
}

/** The name of the static protocol holding the prefixes a speaker originates. */
export const ANNOUNCED = 'announced';
/** Its IPv6 twin (a BIRD protocol has one channel per family of static routes). */
export const ANNOUNCED6 = 'announced6';

/**
 * A BGP protocol's name in BIRD for a peer host: symbols take no dashes, and a bare host name
 * might be a keyword ("router", "device"), so it is prefixed. `lab status` reads it back.
 */
export const birdProtocolName = (host: string): string => `bgp_${host.replaceAll('-', '_')}`;

/** The configuration file's text. */
export function birdConfigText(c: BirdConfig): string {
  const lines = [
    '# Written by kube-packet-lab (lab/plan/bird.ts): regenerated on every `lab up`.',
    'log stderr all;',
    `router id ${c.routerId};`,
    '',
    '# Interfaces and their addresses: BGP needs them to reach its neighbours.',
    'protocol device { scan time 10; }',
  ];
  if (c.announces.length > 0) {
    lines.push('', `protocol static ${ANNOUNCED} {`, '  ipv4;', ...c.announces.map((p) => `  route ${p} blackhole;`), '}');
  }
  if ((c.announces6 ?? []).length > 0) {
    lines.push('', `protocol static ${ANNOUNCED6} {`, '  ipv6;', ...c.announces6!.map((p) => `  route ${p} blackhole;`), '}');
  }
  const dual = c.peers.some((p) => p.nextHop6 !== undefined);
  if (c.installsLearned) {
    // One kernel protocol per family: BIRD's kernel protocol syncs one table.
    for (const family of dual ? ['ipv4', 'ipv6'] : ['ipv4']) {
      lines.push('', `# Learned ${family === 'ipv4' ? 'routes' : 'IPv6 routes'} into the kernel (proto bird); nothing read back from it.`, 'protocol kernel {', `  ${family} { import none; export where source = RTS_BGP; };`, ...(c.mergesPaths ? ['  merge paths on;'] : []), '}');
    }
  }
  for (const p of c.peers) lines.push('', ...peerLines(p));
  return `${lines.join('\n')}\n`;
}

function peerLines(p: BirdPeer): string[] {
  return [
    `protocol bgp ${birdProtocolName(p.name)} {`,
    `  local ${p.localAddress} as ${p.localAs};`,
    `  neighbor ${p.address} as ${p.as};`,
    ...(p.passive ? ['  passive on;'] : []),
    `  hold time ${BGP_TIMERS.hold};`,
    `  keepalive time ${BGP_TIMERS.keepalive};`,
    `  connect delay time ${BGP_TIMERS.connectDelay};`,
    `  connect retry time ${BGP_TIMERS.connectRetry};`,
    `  error wait time ${BGP_TIMERS.connectRetry}, ${BGP_TIMERS.connectRetry * 5};`,
    '  ipv4 {',
    `    import ${p.imports ? 'all' : 'none'};`,
    `    export ${p.exports ? `where proto = "${ANNOUNCED}"` : 'none'};`,
    '  };',
    ...(p.nextHop6 === undefined
      ? []
      : ['  ipv6 {', `    import ${p.imports ? 'all' : 'none'};`, `    export ${p.exports ? `where proto = "${ANNOUNCED6}"` : 'none'};`, ...(p.exports ? [`    next hop address ${p.nextHop6};`] : []), '  };']),
    '}',
  ];
}

/** Where one speaker's files live, under the lab's state folder. */
export interface BirdPaths {
  config: string;
  socket: string;
  pidFile: string;
  log: string;
}

export function birdPaths(stateDir: string, host: string): BirdPaths {
  const dir = join(stateDir, 'bird');
  return { config: join(dir, `${host}.conf`), socket: join(dir, `${host}.ctl`), pidFile: join(dir, `${host}.pid`), log: join(dir, `${host}.log`) };
}

/** BIRD in the foreground (the lab holds its pid), on its own control socket and pid file. */
export const birdArgv = (paths: BirdPaths): string[] => ['bird', '-f', '-c', paths.config, '-s', paths.socket, '-P', paths.pidFile];
