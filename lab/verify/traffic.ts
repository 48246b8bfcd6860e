import { runIn } from '../kernel/exec.js';
import { encodeQuery } from '../workload/dns-message.js';
import type { Flow, PodAnswer } from './flows.js';
import type { Traffic } from './walkthrough.js';

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
  const flow: Flow = { index, group, from: traffic.from, client: `${clientIP}:${localPort}`, target: remote && !remote.startsWith(':') ? remote : traffic.to };
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
  const [ip, port] = [to.slice(0, to.lastIndexOf(':')), Number(to.slice(to.lastIndexOf(':') + 1))];
  const payload = port === 53 ? encodeQuery(localPort, dnsName) : Buffer.from('kube-packet-lab trace\n');
  const script = `const d=require('node:dgram').createSocket('udp4');const [ip,port,lp,hex,ms]=process.argv.slice(1);
const t=setTimeout(()=>{console.log('timeout');process.exit(0)},Number(ms));
d.on('message',(m,r)=>{console.log(r.address+':'+r.port+' '+m.length);clearTimeout(t);d.close()});
d.bind(Number(lp),()=>d.send(Buffer.from(hex,'hex'),Number(port),ip));`;
  const { stdout, exitCode, stderr } = await runIn(ns, process.execPath, ['-e', script, ip, String(port), String(localPort), payload.toString('hex'), String(timeoutS * 1000)], { allowFailure: true, timeoutMs: (timeoutS + 10) * 1000 });
  const flow: Flow = { index: 0, group: 'trace', from, client: `${clientIP}:${localPort}`, target: to };
  const line = stdout.trim();
  if (exitCode !== 0) flow.error = stderr.trim() || `exited with ${exitCode}`;
  else if (line === 'timeout' || !line) flow.error = `no answer within ${timeoutS} s`;
  else {
    const [fromAddr, bytes] = line.split(' ');
    flow.datagram = { reply: `${bytes} bytes from ${fromAddr}${port === 53 ? ` (DNS answer for ${dnsName})` : ''}` };
  }
  return flow;
}
