import { runIn } from '../kernel/exec.js';
import type { Flow, PodAnswer } from './flows.js';
import type { Traffic } from './walkthrough.js';

/**
 * Send one HTTP request with curl from inside a lab namespace, from a chosen source port,
 * so the connection can be found again in every capture and in conntrack.
 */
export async function sendRequest(ns: string, traffic: Traffic, group: string, index: number, localPort: number, clientIP: string): Promise<Flow> {
  const url = `http://${traffic.to}/`;
  const { stdout, stderr, exitCode } = await runIn(
    ns,
    'curl',
    ['-sS', '--max-time', String(traffic.timeout), '--local-port', String(localPort), '-H', 'Connection: close', '-w', '\n%{remote_ip}:%{remote_port}', url],
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
