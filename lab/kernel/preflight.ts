import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';

/** What the lab runs, and the Debian package that provides it. */
export const REQUIRED_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  nsenter: 'util-linux',
  iptables: 'iptables',
  'iptables-restore': 'iptables',
  'iptables-save': 'iptables',
  nft: 'nftables',
  tcpdump: 'tcpdump',
  conntrack: 'conntrack',
  curl: 'curl',
};

/** Tools only some verbs or modes need (`lab trace`, bgp mode), named in preflight(tools) by them. */
const OPTIONAL_TOOLS: Record<string, string> = {
  'xtables-monitor': 'iptables',
  nft: 'nftables',
  stdbuf: 'coreutils',
  // podNetwork mode bgp only: the routing daemon in every node and router, and its client.
  bird: 'bird2',
  birdc: 'bird2',
};

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Find an executable on PATH (and the sbin folders a non-login root shell may lack), without forking. */
export function which(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SBIN].filter(Boolean);
  for (const dir of dirs) {
    const path = join(dir, tool);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** The Debian package a tool comes in (its own name when the lab does not know it). */
export const packageOf = (tool: string): string => REQUIRED_TOOLS[tool] ?? OPTIONAL_TOOLS[tool] ?? tool;

export function missingTools(tools: string[] = Object.keys(REQUIRED_TOOLS)): { tool: string; pkg: string }[] {
  return tools.filter((t) => !which(t)).map((tool) => ({ tool, pkg: packageOf(tool) }));
}

/** Exit 3 unless root: for verbs to call before they take a lab's lock (its file is root's). */
export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError('kube-packet-lab needs root to create network namespaces: run it with sudo', ExitCode.environment);
  }
}

/** Refuse early, before anything is created: root and the tools, or a one-line reason. */
export function preflight(tools?: string[]): void {
  requireRoot();
  const missing = missingTools(tools);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))];
    throw new LabError(
      `missing ${missing.map((m) => m.tool).join(', ')}: install with apt-get install -y ${pkgs.join(' ')}`,
      ExitCode.environment,
      { missing },
    );
  }
  // Keep sbin on PATH for the commands we spawn.
  const path = process.env.PATH ?? '';
  for (const dir of SBIN) if (!path.split(delimiter).includes(dir)) process.env.PATH = `${process.env.PATH}${delimiter}${dir}`;
}
