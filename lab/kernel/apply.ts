import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from '../log.js';
import { RESOLV_CONF_HEADER } from '../plan/dns.js';
import type { Plan } from '../plan/plan.js';
import { run } from './exec.js';
import { NETNS_RUN_DIR } from './netns.js';
import { applyProxyRules } from './rules.js';

/** Create namespaces and veth pairs in one host-level batch; every link is born inside a lab namespace. */
export async function createNamespaces(plan: Plan): Promise<void> {
  await run('ip', ['-batch', '-'], { input: plan.createBatch.join('\n') });
}

/**
 * Links, addresses and routes: each namespace's lines run by `ip -batch` inside it, then its
 * FDB entries (`bridge -batch`, the pod network's) and its sysctls (some name its interfaces). A batch line cannot name a namespace, so it is one `ip`
 * (and one `sysctl`) per namespace, started as cheaply as possible:
 * `nsenter --net` only joins the network namespace, where `ip -n` and `ip netns exec` also
 * copy the mount namespace (every /run/netns mount: a cost that grows with the lab, so a
 * thousand pods would take quadratic time), and a few shells (one per CPU) start them instead
 * of Node spawning each one.
 */
export async function configureNamespaces(plan: Plan): Promise<void> {
  if (plan.namespaces.length === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'kube-packet-lab-batch-'));
  try {
    const lines = plan.namespaces.map((n) => {
      const file = join(dir, `${n.ns}.ip`);
      writeFileSync(file, `${n.batch.join('\n')}\n`);
      const enter = `nsenter --net=${NETNS_RUN_DIR}/${n.ns}`;
      const sysctls = Object.entries(n.sysctls).map(([k, v]) => `'${k}=${v}'`);
      const bridge = n.bridgeBatch.length > 0 ? [`${enter} bridge -batch ${join(dir, `${n.ns}.bridge`)} </dev/null`] : [];
      if (bridge.length > 0) writeFileSync(join(dir, `${n.ns}.bridge`), `${n.bridgeBatch.join('\n')}\n`);
      // One line each: sh -e stops at any failing line (it would not at the first command of an && list).
      return [`${enter} ip -batch ${file} </dev/null`, ...bridge, ...(sysctls.length ? [`${enter} sysctl -q -w ${sysctls.join(' ')}`] : [])].join('\n');
    });
    const parts = Math.max(1, Math.min(availableParallelism(), 4, lines.length));
    const chunks = Array.from({ length: parts }, (_, i) => lines.filter((_, j) => j % parts === i));
    await Promise.all(chunks.map((chunk) => run('sh', ['-e', '-s'], { input: `${chunk.join('\n')}\n` })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface IpLinkJson {
  ifname: string;
  flags?: string[];
  operstate?: string;
  linkinfo?: { info_kind?: string };
}

/**
 * Wait until every veth the plan touched is operationally up, or `timeoutMs` passes; returns
 * the links still down (normally none). A veth transmits only once the kernel has handled its
 * carrier-on event (linkwatch), which can lag `link set up` of its peer by up to a second;
 * until then it drops what it is given, so the first SYN or SYN-ACK of a connection is lost
 * and the connection takes a one-second retransmission to open. The plan gives every veth an
 * index distinct from its peer's, which makes that event urgent (see lab/plan/network.ts), so
 * this wait is normally a single look; it stays as the readiness signal.
 *
 * One look for all links: every veth pair has one end outside the pods (a pod's peer is its
 * port on the node's bridge; a node's or client's is a router port), and veth turns the carrier
 * of both ends on together, so the routers', nodes' and clients' namespaces show every pair.
 */
export async function waitForLinks(plan: Pick<Plan, 'namespaces'>, timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let pending = plan.namespaces.filter((n) => n.role !== 'pod').map((n) => n.ns);
  let down: string[] = [];
  for (;;) {
    const results = await Promise.all(
      pending.map(async (ns) => {
        const { stdout } = await run('ip', ['-n', ns, '-j', '-d', 'link', 'show'], { allowFailure: true });
        let links: IpLinkJson[] = [];
        try {
          links = JSON.parse(stdout || '[]') as IpLinkJson[];
        } catch {
          links = [];
        }
        const notUp = links.filter((l) => l.linkinfo?.info_kind === 'veth' && l.flags?.includes('UP') && l.operstate !== 'UP');
        return { ns, notUp: notUp.map((l) => `${ns}:${l.ifname}`) };
      }),
    );
    pending = results.filter((r) => r.notUp.length > 0).map((r) => r.ns);
    down = results.flatMap((r) => r.notUp);
    if (pending.length === 0 || Date.now() >= deadline) return down;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * kube-proxy's rules: one iptables-restore (or nft -f) per node, as kube-proxy applies a sync. The
 * node's namespace is new and its tables empty, so iptables-restore may replace the tables the
 * payload names (3-4× faster with iptables-nft than --noflush, for the same ruleset); later syncs
 * (lab scale / kill / revive) use --noflush, as kube-proxy does (see resync.ts).
 */
export async function applyRules(plan: Plan): Promise<void> {
  await Promise.all(
    plan.kubeProxy.map(async (r) => {
      await applyProxyRules(r.ns, r.mode, r.payload, { fresh: true });
      if (r.payload6 !== undefined) await applyProxyRules(r.ns, r.mode, r.payload6, { fresh: true, family: 'IPv6' });
    }),
  );
}

/**
 * Files `ip netns exec` bind-mounts into a namespace (each pod's resolv.conf), each in a folder
 * named after one of this lab's namespaces. `up` records the folders in the state first and
 * has already refused folders holding anything else (see foreignNamespaceFiles).
 */
export function writeNamespaceFiles(plan: Plan): void {
  for (const f of plan.files) {
    mkdirSync(f.dir, { recursive: true });
    writeFileSync(f.path, f.content);
  }
}

/**
 * Anything already in the folders the lab would create and later remove that is not ours to
 * delete. A resolv.conf carrying the lab's header is ours, left by a lab whose state was lost.
 */
export function foreignNamespaceFiles(plan: Plan): string[] {
  return plan.files.flatMap((f) => {
    try {
      return readdirSync(f.dir).map((name) => `${f.dir}/${name}`).filter((path) => !ourNamespaceFile(path));
    } catch {
      return [];
    }
  });
}

/** A resolv.conf the lab wrote (it carries the lab's header), left by a lab whose state was lost. */
export function ourNamespaceFile(path: string): boolean {
  try {
    return path.endsWith('/resolv.conf') && readFileSync(path, 'utf8').startsWith(`${RESOLV_CONF_HEADER}\n`);
  } catch {
    return false;
  }
}
