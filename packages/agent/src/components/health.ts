import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@facefleet/protocol';

/** `/healthz` (JSON, 200 while the agent runs) and `/metrics` (Prometheus text). */
export class HealthServer {
  private server?: Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly health: () => Record<string, unknown>,
    private readonly metrics: () => string,
  ) {}

  async start(): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.health()));
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new ConfigError(`health.port ${this.port} on ${this.host} is already in use`) : err),
      );
      server.listen(this.port, this.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
