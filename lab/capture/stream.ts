/**
 * Several tcpdumps' decoded lines, merged into one stream in the order the packets were
 * captured. Each tcpdump prints `-tt` epoch timestamps; lines are held for a short window
 * (packets on different interfaces arrive through different pipes) and released in time order.
 * Pure: the caller feeds lines and a clock.
 */

export interface StreamLine {
  /** host:ifname */
  point: string;
  /** Seconds since the epoch, as tcpdump stamped the packet. */
  time: number;
  /** The decoded packet, as tcpdump prints it after the timestamp (and, with -i any, the interface). */
  text: string;
}

/** Parse one `tcpdump -tt -n -l` line; with `-i any` the interface and direction come first. */
export function parseTcpdumpLine(host: string, ifname: string | undefined, line: string): StreamLine | undefined {
  const m = /^(\d+\.\d+)\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  let text = m[2]!;
  let iface = ifname;
  if (!ifname) {
    const any = /^(\S+)\s+(In|Out|B|M|P)\s+(.*)$/.exec(text);
    if (any) {
      iface = any[1]!;
      text = `${any[2]} ${any[3]}`;
    }
  }
  return { point: `${host}:${iface ?? 'any'}`, time: Number(m[1]), text };
}

/** "12:00:01.123456", as tcpdump prints local time. */
export function clock(time: number): string {
  const d = new Date(time * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(Math.round((time % 1) * 1e6) % 1e6, 6)}`;
}

export function formatLine(l: StreamLine, width: number): string {
  return `${clock(l.time)} ${l.point.padEnd(width)} ${l.text}`;
}

/** Holds lines for `windowMs` and releases them sorted by capture time. */
export class OrderedStream {
  private held: { line: StreamLine; arrived: number }[] = [];
  constructor(private readonly windowMs: number) {}

  push(line: StreamLine, now: number): void {
    this.held.push({ line, arrived: now });
  }

  /** Lines whose window has passed (all of them with `flush`), oldest capture time first. */
  release(now: number, flush = false): StreamLine[] {
    this.held.sort((a, b) => a.line.time - b.line.time);
    // A line may go once it has waited its window; anything captured before it goes with it.
    let cut = -1;
    this.held.forEach((h, i) => {
      if (flush || now - h.arrived >= this.windowMs) cut = i;
    });
    return this.held.splice(0, cut + 1).map((h) => h.line);
  }
}
