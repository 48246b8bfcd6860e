import { runIn } from '../kernel/exec.js';
import { splitHostPort } from '../util/ipv6.js';
import { encodeQuery, HOSTNAME_BIND, hostnameBindAnswer } from '../workload/dns-message.js';
import type { Flow, PodAnswer } from './flows.js';
import type { Traffic } from './walkthrough.js';

/**
 * UDP requests of a walkthrough's traffic (`protocol: UDP`): one datagram from a chosen source
 * port, one answer, so the exchange is found again in every capture and in conntrack as a TCP
 * connection is. The datagram is a DNS query for hostname.bind (class CH, TXT): the cluster DNS
 * pod answers it as a DNS server would, with its name (and here the client it saw) in the TXT;
 * the HTTP pods answer any datagram on a UDP Service port with the JSON they send over HTTP.
 */

/** What came back to one datagram: the answer's source and bytes, or why nothing did. */
export type DatagramReply = { from: string; bytes: Buffer } | { error: string };

/** One datagram out of a lab namespace from `localPort`, and the first answer (a node one-off does the socket work inside the namespace). */
export async function exchangeDatagram(ns: string, to: string, localPort: number, payload: Buffer, timeoutS: number): Promise<DatagramReply> {
  const { ip, port } = splitHostPort(to);
  const script = `const d=require('node:dgram').createSocket('${ip.includes(':') ? 'udp6' : 'udp4'}');const [ip,port,lp,hex,ms]=process.argv.slice(1);
const t=setTimeout(()=>{console.log('timeout');process.exit(0)},Number(ms));
d.on('message',(m,r)=>{console.log(r.address+':'+r.port+' '+m.toString('hex'));clearTimeout(t);d.close()});
d.on('error',(e)=>{console.log('error '+e.message);process.exit(0)});
d.bind(Number(lp),()=>d.send(Buffer.from(hex,'hex'),Number(port),ip));`;
  const args = ['-e', script, ip, String(port), String(localPort), payload.toString('hex'), String(Math.round(timeoutS * 1000))];
  const { stdout, exitCode, stderr } = await runIn(ns, process.execPath, args, { allowFailure: true, timeoutMs: (timeoutS + 10) * 1000 });
  const line = stdout.trim();
  if (exitCode !== 0) return { error: stderr.trim() || `exited with ${exitCode}` };
  if (line === 'timeout' || !line) return { error: `no answer within ${timeoutS} s` };
  if (line.startsWith('error ')) return { error: line.slice(6) };
  const [from, hex] = line.split(' ');
  return { from: from!, bytes: Buffer.from(hex ?? '', 'hex') };
}

/** The pod's answer in a reply: the HTTP pods' JSON as is, or the DNS pod's hostname.bind TXT. Pure. */
export function podAnswerOf(bytes: Buffer): PodAnswer | undefined {
  const text = bytes[0] === 0x7b ? bytes.toString('utf8') : hostnameBindAnswer(bytes);
  try {
    const a = text === undefined ? undefined : (JSON.parse(text) as PodAnswer);
    return a && typeof a.pod === 'string' && typeof a.client === 'string' ? a : undefined;
  } catch {
    return undefined;
  }
}

/** One UDP request of a traffic group, as sendRequest sends a TCP one. */
export async function sendUdpRequest(ns: string, traffic: Traffic, group: string, index: number, localPort: number, clientIP: string): Promise<Flow> {
  const reply = await exchangeDatagram(ns, traffic.to, localPort, encodeQuery(localPort, HOSTNAME_BIND, 'TXT', 'CH'), traffic.timeout);
  const flow: Flow = { index, group, from: traffic.from, client: `${clientIP}:${localPort}`, target: traffic.to };
  if ('error' in reply) {
    flow.error = reply.error;
    return flow;
  }
  flow.datagram = { reply: `${reply.bytes.length} bytes from ${reply.from}` };
  const answer = podAnswerOf(reply.bytes);
  if (answer) flow.answer = answer;
  else flow.error = `unexpected answer from ${reply.from}: ${reply.bytes.toString('latin1').slice(0, 80)}`;
  return flow;
}

