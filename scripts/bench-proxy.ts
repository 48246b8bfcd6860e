#!/usr/bin/env node
/**
 * Benchmark: kube-proxy's iptables mode against its nftables mode as the number of Services
 * grows. For 10, 1000 and 5000 Services (the nodeport lab's `web` plus N-1 ClusterIP Services
 * over the same pods, `web` written last), in each mode:
 *   - rule programming: the `kube-proxy rules` stage of `lab up` (one iptables-restore or one
 *     nft -f per node, all nodes at once) and a resync after an endpoint change (`lab scale`,
 *     the slowest node's one call), payload lines;
 *   - first-packet latency: curl's time_connect from the client to the NodePort (the SYN's walk
 *     through the rules, DNAT and back), median over new connections. In iptables mode the
 *     NodePort jump is the last rule of KUBE-SERVICES, after one rule per Service port; in
 *     nftables mode it is one map lookup.
 * Root only; uses its own lab names and temporary topology files.
 *
 *   sudo node dist/scripts/bench-proxy.js [connections] [sizes...]
 */
import { $ } from 'zx';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { PROJECT_ROOT } from '../lab/util/project.js';

const connections = Number(process.argv[2] ?? 30);
const sizes = process.argv.slice(3).map(Number).filter((n) => n > 0);
const SIZES = sizes.length ? sizes : [10, 1000, 5000];
const MODES = ['iptables', 'nftables'] as const;
const cli = join(PROJECT_ROOT, 'dist', 'lab', 'cli', 'main.js');
$.verbose = false;

/** The nodeport topology with n-1 extra ClusterIP Services ahead of `web`. */
function topologyFile(n: number, lab: string): string {
  const t = parse(readFileSync(join(PROJECT_ROOT, 'topologies', 'nodeport.yaml'), 'utf8')) as { lab: string; walkthrough?: string; services: unknown[] };
  const extra = Array.from({ length: n - 1 }, (_, i) => ({
    name: `svc-${i}`,
    type: 'ClusterIP',
    // 172.31.1.0 onwards: clear of web's 172.31.0.5.
    clusterIP: `172.31.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 8443 }],
  }));
  t.lab = lab;
  delete t.walkthrough;
  t.services = [...extra, ...t.services];
  const path = `/tmp/${lab}.yaml`;
  writeFileSync(path, stringify(t));
  return path;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const min = (xs: number[]) => Math.min(...xs);

interface Row {
  mode: string;
  services: number;
  upRulesMs: number;
  resyncMs: number;
  lines: number;
  connectUs: number;
  /** The fastest connection: the least disturbed by other load on the machine. */
  connectMinUs: number;
  /** A step that did not finish (e.g. a resync that outlived the lab's 5-minute command limit). */
  failed?: string;
}

const rows: Row[] = [];
for (const n of SIZES) {
  for (const mode of MODES) {
    const lab = `bp-${mode.slice(0, 3)}-${n}`;
    const file = topologyFile(n, lab);
    try {
      const up = JSON.parse((await $`node ${cli} up ${file} --set kubeProxy.mode=${mode} --json`).stdout) as { timings: Record<string, number> };
      const upRulesMs = up.timings['kube-proxy rules'] ?? up.timings.rules ?? NaN;
      // First packets: each curl opens a new connection (a new conntrack entry, a full rule walk).
      const script = `for i in $(seq ${connections}); do curl -s -o /dev/null -m 2 -w '%{time_connect}\\n' 10.240.0.4:32000; done`;
      const out = (await $`ip netns exec ${lab}-client sh -c ${script}`).stdout;
      const times = out.split('\n').filter(Boolean).map((s) => Number(s) * 1e6);
      const connectUs = median(times);
      const connectMinUs = min(times);
      const started = performance.now();
      const scale = await $`node ${cli} scale ${lab} web=3 --json`.nothrow();
      if (scale.exitCode !== 0) {
        const why = `lab scale failed after ${Math.round((performance.now() - started) / 1000)} s: ${scale.stderr.split('\n')[0]}`;
        rows.push({ mode, services: n, upRulesMs, resyncMs: NaN, lines: 0, connectUs, connectMinUs, failed: why });
        console.error(`${mode} ${n}: ${why}`);
        continue;
      }
      const scaled = JSON.parse(scale.stdout) as { rules: { restoreMs: number; lines: number }[] };
      const resyncMs = Math.max(...scaled.rules.map((r) => r.restoreMs));
      const lines = scaled.rules[0]?.lines ?? 0;
      rows.push({ mode, services: n, upRulesMs, resyncMs, lines, connectUs, connectMinUs });
      console.error(`${mode} ${n}: rules at up ${upRulesMs} ms, resync ${resyncMs} ms (${lines} lines), first packet median ${Math.round(connectUs)} µs, min ${Math.round(connectMinUs)} µs`);
    } finally {
      await $`node ${cli} down ${lab}`.nothrow();
      rmSync(file, { force: true });
    }
  }
}

console.log(`kube-proxy modes: ${connections} new connections per case, ${(await $`nproc`).stdout.trim()} cores, node ${process.version}`);
console.log('| services | mode | rules at `lab up` (ms) | resync after `lab scale` (ms) | payload lines | first packet, client → NodePort: min / median (µs) |');
console.log('|---:|---|---:|---:|---:|---:|');
for (const r of rows) {
  const resync = r.failed ? `(${r.failed})` : String(Math.round(r.resyncMs));
  console.log(`| ${r.services} | ${r.mode} | ${Math.round(r.upRulesMs)} | ${resync} | ${r.lines || ''} | ${Math.round(r.connectMinUs)} / ${Math.round(r.connectUs)} |`);
}
console.log(`load average at the end: ${(await $`cat /proc/loadavg`).stdout.trim()}`);
