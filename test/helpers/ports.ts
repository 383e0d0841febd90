import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports are picked below the kernel's ephemeral range (ip_local_port_range), which outgoing
 * connections and `listen(0)` draw from: a port picked there and freed could be taken by any
 * connection before the server that wanted it binds it ("cannot listen").
 */
const LOWEST_PORT = 10_000;

function ephemeralFloor(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function tryListen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `count` consecutive ports on 127.0.0.1, all free a moment ago; returns the first. */
async function freeRun(count: number): Promise<number> {
  const floor = ephemeralFloor();
  const span = floor - LOWEST_PORT - count;
  if (span < 1000) throw new Error(`the ephemeral port range starts at ${floor}: too little room below it for test servers`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = LOWEST_PORT + Math.floor(Math.random() * span);
    let free = true;
    for (let i = 0; i < count && free; i++) free = await tryListen(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} free ports in a row below ${floor}`);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers that must restart on the same port). */
export function freePort(): Promise<number> {
  return freeRun(1);
}

/** A port N with N+1 to N+3 free too (a moment ago): `tidemark up` takes four. */
export function freeQuad(): Promise<number> {
  return freeRun(4);
}
