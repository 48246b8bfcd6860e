/**
 * The lab's one workload process: it serves every pod's sockets, each socket opened inside its
 * pod's network namespace (see netns.ts), so each pod still listens on its own address and
 * answers with its own name. One process instead of one per pod: tens of megabytes for the lab
 * instead of tens per pod, and a pod starts in a millisecond.
 *
 * Started by the lab inside one of the lab's namespaces, with the lab's marker argument (so
 * `lab down` and its sweep find it by pid and marker). It prints one "ready" line on stdout
 * once its control socket listens, then takes requests there (protocol.ts): open or close
 * exactly the pods asked for. Logs go to stderr (a file in the lab's state folder); the DNS
 * pods' queries to each pod's own log file.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { serveDns } from './dns-pod.js';
import { serveHttp } from './http-pod.js';
import { inNamespace } from './netns.js';
import type { ControlRequest, ControlResponse, PodWorkload } from './protocol.js';
import type { PodSockets } from './sockets.js';

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (!value) {
    process.stderr.write(`workload host: missing ${flag}\n`);
    process.exit(2);
  }
  return value;
};
const controlPath = arg('--control');
const logDir = arg('--log-dir');

const pods = new Map<string, PodSockets>();

async function open(w: PodWorkload): Promise<void> {
  if (pods.has(w.pod)) return;
  const logFile = join(logDir, `${w.pod}.log`);
  const sockets = await inNamespace(w.ns, () => (w.kind === 'dns' ? serveDns(w, (line) => appendFileSync(logFile, line)) : serveHttp(w)));
  pods.set(w.pod, sockets);
}

function close(pod: string): void {
  pods.get(pod)?.close();
  pods.delete(pod);
}

async function handle(req: ControlRequest): Promise<ControlResponse> {
  try {
    if (req.op === 'open') for (const w of req.pods) await open(w);
    else if (req.op === 'close') for (const p of req.pods) close(p);
    return { ok: true, pods: [...pods.keys()] };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const control = createServer((conn) => {
  let buffered = '';
  conn.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        conn.write(`${JSON.stringify({ ok: false, error: 'not JSON' })}\n`);
        continue;
      }
      void handle(req).then((res) => conn.write(`${JSON.stringify(res)}\n`));
    }
  });
  conn.on('error', () => conn.destroy());
});

rmSync(controlPath, { force: true });
control.listen(controlPath, () => process.stdout.write(`ready ${process.pid}\n`));

const stop = () => {
  rmSync(controlPath, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The lab closes our stdout after the ready line; never write there again.
process.stdout.on('error', () => undefined);
