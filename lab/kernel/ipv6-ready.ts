import { runIn } from './exec.js';

/**
 * Right after lab up, each interface's link-local address is still tentative (duplicate address
 * detection, about 2 s) and neighbour discovery waits for it: the first IPv6 connection would
 * outlast a 1 s timeout (a trace's, a curl's). `up` of a dual-stack lab and `lab trace` over IPv6
 * wait until the kernel reports no tentative address in these namespaces (5 s at most).
 */
export async function untilLinkLocalSettled(namespaces: string[]): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const tentative = await Promise.all(namespaces.map(async (n) => (await runIn(n, 'ip', ['-6', '-o', 'addr', 'show', 'tentative'], { allowFailure: true })).stdout.trim() !== ''));
    if (!tentative.some(Boolean)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
