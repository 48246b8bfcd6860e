import { createHash } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 with the standard alphabet, as Go's base32.StdEncoding writes it. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

/**
 * sha256 then base32 of a name, remembered: a sync at 1000 services hashes the same few thousand
 * names for every node and for the rulesets before and after a change.
 */
const hashes = new Map<string, string>();
function hashOf(text: string): string {
  let h = hashes.get(text);
  if (h === undefined) {
    h = base32(createHash('sha256').update(text).digest());
    hashes.set(text, h);
  }
  return h;
}

/** kube-proxy's chain suffix: base32(sha256(servicePortName + protocol))[:16]. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hashOf(servicePortName + protocol.toLowerCase()).slice(0, 16);
}

/** The endpoint chain suffix: the endpoint "ip:port" is hashed in too. */
export function endpointHash(servicePortName: string, protocol: string, endpoint: string): string {
  return hashOf(servicePortName + protocol.toLowerCase() + endpoint).slice(0, 16);
}

export const serviceChain = (spn: string, proto: string) => `KUBE-SVC-${portProtoHash(spn, proto)}`;
export const serviceLocalChain = (spn: string, proto: string) => `KUBE-SVL-${portProtoHash(spn, proto)}`;
export const externalChain = (spn: string, proto: string) => `KUBE-EXT-${portProtoHash(spn, proto)}`;
export const firewallChain = (spn: string, proto: string) => `KUBE-FW-${portProtoHash(spn, proto)}`;
export const endpointChain = (spn: string, proto: string, endpoint: string) => `KUBE-SEP-${endpointHash(spn, proto, endpoint)}`;

/**
 * nftables mode names chains by their meaning, prefixed with a short hash of that meaning so
 * names that differ in one digit still look different: "ULMVA6XW-ns1/svc1/tcp/p80".
 */
export function nftNameBase(name: string): string {
  return `${hashOf(name).slice(0, 8)}-${name}`;
}

/** "namespace/name/protocol/portName", the service part of every per-service nftables name. */
export const nftServiceKey = (namespace: string, name: string, protocol: string, portName: string) => `${namespace}/${name}/${protocol.toLowerCase()}/${portName}`;

/** The endpoint part: "<service key>__ip/port". */
/** An IPv6 endpoint IP has its colons (not allowed in a chain name) turned to dots, as kube-proxy does. */
export const nftEndpointKey = (serviceKey: string, ip: string, port: number) => `${serviceKey}__${ip.replaceAll(':', '.')}/${port}`;
