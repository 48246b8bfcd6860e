import { ExitCode, LabError } from '../errors.js';
import { parseIPv4 } from './ipv4.js';

/**
 * Where `probe` and `trace` send: an IPv4 address or a DNS name, a colon, a port 1-65535.
 * Checked before anything runs, so a typo is a clear refusal and not a curl failure later.
 */
export function checkTarget(flag: string, to: string): string {
  const bad = (why: string) => new LabError(`${flag} ${JSON.stringify(to)}: ${why}, e.g. 10.240.0.4:32000 or web.default.svc.cluster.local:80`, ExitCode.badInput);
  const m = /^([^:]*):([^:]*)$/.exec(to);
  if (!m) throw bad('expected host:port');
  const [, host, port] = m as unknown as [string, string, string];
  const isName = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(host) && !/^[\d.]+$/.test(host);
  if (parseIPv4(host) === undefined && !isName) throw bad(`"${host}" is not an IPv4 address or a DNS name`);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`"${port}" is not a port (1-65535)`);
  return to;
}
