import { runIn } from '../kernel/exec.js';
import { encodeQuery } from '../workload/dns-message.js';
import type { Flow, PodAnswer } from './flows.js';
import type { Traffic } from './walkthrough.js';
import { exchangeDatagram } from './udp-traffic.js';
import { joinHostPort, splitHostPort } from '../util/ipv6.js';

/** curl's "%{remote_ip}:%{remote_port}" ("fd00:10:240::4:32000" for IPv6, no brackets) as ip:port in the lab's form. */
export function curlRemote(text: string): string | undefined {
  if (!text || text.startsWith(':')) return undefined;
  const i = text.lastIndexOf(':');
  return joinHostPort(text.slice(0, i), text.slice(i + 1));
}

/**
 * Send one HTTP request with curl from inside a lab namespace, from a chosen source port (and
 * the traffic's source address, if it names one: `clientIP` is then that address), so the
 * connection can be found again in every capture and in conntrack.
 */
export async function sendRequest(ns: string, traffic: Traffic, group: string, index: number, localPort: number, clientIP: string): Promise<Flow> {
  const url = `http://${traffic.to}/`;
  const { stdout, stderr, exitCode } = await runIn(
    ns,
    'curl',
    // traffic.source: bound to that address of the sender's (curl --interface takes an address).
    ['-sS', '--max-time', String(traffic.timeout), ...(traffic.source !== undefined ? ['--interface', traffic.source] : []), '--local-port', String(localPort), '-H', 'Connection: close', '-w', '\n%{remote_ip}:%{remote_port}', url],
    { allowFailure: true, timeoutMs: (traffic.timeout + 5) * 1000 },
  );
  const lines = stdout.split('\n');
  const remote = lines.pop() ?? '';
  const flow: Flow = { index, group, from: traffic.from, client: joinHostPort(clientIP, localPort), target: curlRemote(remote) ?? traffic.to };
  if (exitCode !== 0) {
    flow.error = stderr.trim() || `curl exited with ${exitCode}`;
    return flow;
  }
  try {
    flow.answer = JSON.parse(lines.join('\n')) as PodAnswer;
  } catch {
    flow.error = `unexpected answer: ${lines.join(' ').slice(0, 120)}`;
  }
  return flow;
}

/**
 * Send one UDP datagram from inside a lab namespace, from a fixed source port, and wait for one
 * answer (lab trace --proto udp). To port 53 it is a DNS query for `dnsName`, so the cluster
 * DNS answers; elsewhere a short text. A node one-off does the socket work inside the namespace.
 */
export async function sendDatagram(ns: string, from: string, to: string, localPort: number, clientIP: string, dnsName: string, timeoutS = 1): Promise<Flow> {
  const { port } = splitHostPort(to);
  const payload = port === 53 ? encodeQuery(localPort, dnsName) : Buffer.from('kube-packet-lab trace\n');
  const reply = await exchangeDatagram(ns, to, localPort, payload, timeoutS);
  const flow: Flow = { index: 0, group: 'trace', from, client: joinHostPort(clientIP, localPort), target: to };
  if ('error' in reply) flow.error = reply.error;
  else flow.datagram = { reply: `${reply.bytes.length} bytes from ${reply.from}${port === 53 ? ` (DNS answer for ${dnsName})` : ''}` };
  return flow;
}
