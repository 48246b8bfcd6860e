import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';

/**
 * A pod's open sockets: its listeners and the connections they accepted. Closing them all is
 * what the kernel does when a pod's process stops, so `lab kill` ends exactly one pod.
 */
export class PodSockets {
  private readonly servers: Server[] = [];
  private readonly udp: UdpSocket[] = [];
  private readonly connections = new Set<{ destroy(): void }>();

  /** Listen on a TCP server; resolves once the socket listens (it exists from then on). */
  listen(server: Server, port: number, host = '0.0.0.0'): Promise<void> {
    this.servers.push(server);
    server.on('connection', (c) => {
      this.connections.add(c);
      c.on('close', () => this.connections.delete(c));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // '::' is the IPv6 listener of a dual-stack pod: IPv6 only, so IPv4 clients keep their plain addresses on the 0.0.0.0 one.
      server.listen({ port, host, ipv6Only: host === '::' }, () => {
        server.off('error', reject);
        server.on('error', () => undefined); // one pod's trouble must not end the others
        resolve();
      });
    });
  }

  /** listen, and if it fails, close every socket opened so far before rethrowing: a failed start leaves nothing open. */
  async listenOrClose(server: Server, port: number, host?: string): Promise<void> {
    try {
      await this.listen(server, port, host);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  bind(socket: UdpSocket, port: number): Promise<void> {
    this.udp.push(socket);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '0.0.0.0', () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve();
      });
    });
  }

  close(): void {
    for (const s of this.servers) s.close();
    for (const c of this.connections) c.destroy();
    for (const u of this.udp) u.close();
    this.connections.clear();
  }
}
