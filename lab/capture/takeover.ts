import { closeSync, existsSync, mkdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../state/store.js';
import { openRunFile, writeRunFile } from '../util/run-file.js';
import { parseArpPcap, type ArpPacket } from './arp.js';
import { withCaptures, type ObservationPoint } from './tcpdump.js';

/**
 * MetalLB's layer-2 failover happens during a sync (lab kill, revive, scale), not during a verify
 * run: so the sync that moves an IP to another leader captures the ARP on each router's node
 * network while it happens, and keeps it in the lab's state folder (l2/takeover/), with the
 * routers' neighbour entries before and after. A walkthrough's gratuitousArp step judges it.
 */
export interface TakeoverRecord {
  /** When the sync began (ISO time). */
  when: string;
  /** The IPs whose leader changed: from the old leader to the new one (undefined: nobody). */
  moves: { ip: string; from: string | undefined; to: string | undefined }[];
  /** Per router and IP, the MAC its neighbour entry held before the speakers were told (undefined: no entry). */
  before: Record<string, Record<string, string | undefined>>;
  /** The same once the sync stopped waiting. */
  after: Record<string, Record<string, string | undefined>>;
  /** host:ifname → pcap file name in the takeover folder. */
  captures: Record<string, string>;
  /** From the speakers being told to each router's entry holding the new leader's MAC. */
  ms: Record<string, number>;
}

export const TAKEOVER_DIR = 'l2/takeover';
const RECORD_FILE = 'takeover.json';

const dirOf = (lab: string) => join(labDir(lab), TAKEOVER_DIR);

/** Run `work` with ARP captured at `points`, then keep the pcaps and the record `work` returns as the lab's last takeover. */
export async function recordTakeover<T>(lab: string, points: ObservationPoint[], work: () => Promise<{ result: T; record: Omit<TakeoverRecord, 'captures'> }>): Promise<T> {
  const dir = dirOf(lab);
  rmSync(dir, { recursive: true, force: true }); // the last takeover only
  mkdirSync(dir, { recursive: true });
  const run = await withCaptures(points, dir, work, ['arp']);
  const captures = Object.fromEntries([...run.files].map(([id, f]) => [id, f.slice(dir.length + 1)]));
  writeRunFile(join(dir, RECORD_FILE), `${JSON.stringify({ ...run.result.record, captures }, null, 2)}\n`);
  return run.result.result;
}

/** The lab's last takeover with its ARP packets, the pcaps copied into `runDir` as takeover-<host>-<if>.pcap; undefined: none yet. */
export function readTakeover(lab: string, runDir: string): (TakeoverRecord & { packets: Record<string, ArpPacket[]> }) | undefined {
  const dir = dirOf(lab);
  if (!existsSync(join(dir, RECORD_FILE))) return undefined;
  const record = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8')) as TakeoverRecord;
  const captures: Record<string, string> = {};
  const packets: Record<string, ArpPacket[]> = {};
  for (const [id, file] of Object.entries(record.captures)) {
    const copy = `takeover-${file}`;
    const pcap = readFileSync(join(dir, file));
    const fd = openRunFile(join(runDir, copy));
    try {
      for (let off = 0; off < pcap.length; ) off += writeSync(fd, pcap, off);
    } finally {
      closeSync(fd);
    }
    captures[id] = copy;
    packets[id] = parseArpPcap(pcap);
  }
  return { ...record, captures, packets };
}

/** A saved run's takeover, its packets read again from the copies beside the evidence. */
export function takeoverPackets(runDir: string, captures: Record<string, string>): Record<string, ArpPacket[]> {
  return Object.fromEntries(Object.entries(captures).map(([id, f]) => [id, parseArpPcap(readFileSync(join(runDir, f)))]));
}
