import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers that must restart on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A port N with N+1 to N+3 free too (a moment ago): `tidemark up` takes four. */
export async function freeQuad(): Promise<number> {
  const tryListen = (p: number) => new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await tryListen(base)) && (await tryListen(base + 1)) && (await tryListen(base + 2)) && (await tryListen(base + 3))) return base;
  }
  throw new Error('no four free ports in a row');
}
