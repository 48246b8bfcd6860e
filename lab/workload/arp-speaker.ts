/**
 * A layer-2 speaker, as MetalLB's answers ARP: run inside one node's namespace (`ip netns exec
 * <ns> node arp-speaker.js <dev> <owned-file>`), it opens an AF_PACKET socket for ARP on <dev>
 * through koffi (Node has no raw sockets) and answers every who-has for an IP it owns with the
 * device's MAC; the IP is never an address of the node, so the kernel itself stays silent. The
 * owned IPs are the lines of <owned-file>, read again on SIGHUP; an IP newly owned is announced
 * at once with a gratuitous ARP (broadcast, sender = target = the IP), which moves the neighbour
 * entries of the hosts on the network. It prints "ready" once the socket is bound.
 */
import { readFileSync } from 'node:fs';
import koffi from 'koffi';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_ARP = 0x0806;

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const bind = libc.func('int bind(int fd, void *addr, int len)') as (fd: number, addr: Buffer, len: number) => number;
const recv = libc.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)');
const send = libc.func('long send(int fd, uint8_t *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number;
const ifIndex = libc.func('unsigned int if_nametoindex(const char *name)') as (name: string) => number;

const htons = (n: number) => ((n & 0xff) << 8) | (n >> 8);
const macBytes = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));
const ipOf = (b: Buffer) => [...b].join('.');

/** An ARP frame over Ethernet: op 1 request, 2 reply. */
export function arpFrame(o: { dstMac: Buffer; srcMac: Buffer; op: 1 | 2; senderMac: Buffer; senderIp: string; targetMac: Buffer; targetIp: string }): Buffer {
  const f = Buffer.alloc(42);
  o.dstMac.copy(f, 0);
  o.srcMac.copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(o.op, 20);
  o.senderMac.copy(f, 22);
  ipBytes(o.senderIp).copy(f, 28);
  o.targetMac.copy(f, 32);
  ipBytes(o.targetIp).copy(f, 38);
  return f;
}

/** A who-has in a received frame: the asker and the IP asked for (undefined for anything else). */
export function whoHas(f: Buffer): { senderMac: Buffer; senderIp: string; targetIp: string } | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== ETH_P_ARP || f.readUInt16BE(20) !== 1) return undefined;
  return { senderMac: f.subarray(22, 28), senderIp: ipOf(f.subarray(28, 32)), targetIp: ipOf(f.subarray(38, 42)) };
}

function main(dev: string, ownedFile: string): void {
  const mac = macBytes(readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim());
  const fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ARP));
  if (fd < 0) throw new Error(`socket(AF_PACKET) failed: errno ${koffi.errno()}`);
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeUInt16BE(ETH_P_ARP, 2);
  sll.writeInt32LE(ifIndex(dev), 4);
  if (bind(fd, sll, sll.length) !== 0) throw new Error(`bind(${dev}) failed: errno ${koffi.errno()}`);
  let owned = new Set<string>();
  const reread = () => {
    const now = new Set(readFileSync(ownedFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean));
    for (const ip of now) if (!owned.has(ip)) sendFrame(arpFrame({ dstMac: Buffer.alloc(6, 0xff), srcMac: mac, op: 1, senderMac: mac, senderIp: ip, targetMac: Buffer.alloc(6), targetIp: ip }), `gratuitous ${ip}`);
    owned = now;
    process.stdout.write(`owns ${[...owned].join(' ') || 'nothing'}\n`);
  };
  const sendFrame = (f: Buffer, what: string) => {
    if (send(fd, f, f.length, 0) < 0) process.stderr.write(`send ${what} failed: errno ${koffi.errno()}\n`);
  };
  const buf = Buffer.alloc(1600);
  const next = () =>
    recv.async(fd, buf, buf.length, 0, (err: unknown, n: number) => {
      if (err || n < 0) throw new Error(`recv failed: ${String(err ?? koffi.errno())}`);
      const q = whoHas(buf.subarray(0, n));
      if (q && owned.has(q.targetIp)) sendFrame(arpFrame({ dstMac: q.senderMac, srcMac: mac, op: 2, senderMac: mac, senderIp: q.targetIp, targetMac: q.senderMac, targetIp: q.senderIp }), `is-at ${q.targetIp}`);
      next();
    });
  process.on('SIGHUP', reread);
  reread();
  next();
  process.stdout.write('ready\n');
}

if (process.argv[1]?.endsWith('arp-speaker.js')) main(process.argv[2] ?? 'eth0', process.argv[3] ?? '/dev/null');
