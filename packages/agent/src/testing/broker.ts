import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

/** An in-process aedes broker on a free (or given) loopback port. */
export class TestBroker {
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly broker: Aedes,
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(port = 0): Promise<TestBroker> {
    const broker = await Aedes.createBroker();
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const b = new TestBroker(broker, server, (server.address() as AddressInfo).port);
    for (const s of sockets) b.sockets.add(s);
    server.on('connection', (s) => b.sockets.add(s));
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Stop hard: every connection is cut, as when the broker's machine dies. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    await new Promise<void>((r) => this.broker.close(() => r()));
  }
}

/** A port that nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
