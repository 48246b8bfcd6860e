import { ExitCode, LabError } from '../errors.js';
import { parseIPv4 } from './ipv4.js';
import { formatIPv6, parseIPv6Loose } from './ipv6.js';

/**
 * Where `probe` and `trace` send: an IPv4 address or a DNS name, a colon, a port 1-65535; or an
 * IPv6 address in brackets ("[fd00:10:240::4]:32000").
 * Checked before anything runs, so a typo is a clear refusal and not a curl failure later.
 */
export function checkTarget(flag: string, to: string): string {
  const bad = (why: string) => new LabError(`${flag} ${JSON.stringify(to)}: ${why}, e.g. 10.240.0.4:32000 or web.default.svc.cluster.local:80`, ExitCode.badInput);
  // IPv6 in brackets, as kube-proxy and curl write it: "[fd00:10:240::4]:32000", the address in RFC 5952 form.
  const v6 = /^\[([^\]]*)\]:([^:]*)$/.exec(to);
  if (v6) {
    const [, host, port] = v6 as unknown as [string, string, string];
    const loose = parseIPv6Loose(host);
    if (loose === undefined) throw bad(`"${host}" is not an IPv6 address`);
    if (formatIPv6(loose) !== host) throw bad(`write the IPv6 address as the kernel prints it: [${formatIPv6(loose)}]:${port}`);
    checkPort(port, bad);
    return to;
  }
  const m = /^([^:]*):([^:]*)$/.exec(to);
  if (!m) throw bad('expected host:port');
  const [, host, port] = m as unknown as [string, string, string];
  const isName = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(host) && !/^[\d.]+$/.test(host);
  if (parseIPv4(host) === undefined && !isName) throw bad(`"${host}" is not an IPv4 address or a DNS name`);
  checkPort(port, bad);
  return to;
}

function checkPort(port: string, bad: (why: string) => LabError): void {
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`"${port}" is not a port (1-65535)`);
}
