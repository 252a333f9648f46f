import { createServer } from 'node:net';

/**
 * A TCP port that was free a moment ago: bind port 0, read the port, close. Another process
 * may take it before the server binds it, so launchers retry a start that fails with
 * "address already in use".
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error(`no port from ${String(address)}`));
      });
    });
  });
}
