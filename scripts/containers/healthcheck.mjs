// The images' health check: GET /healthz on the server's own listen address, in Node because the
// image may have no curl or shell. Exits 0 when the server answers {"ok":true}.
const listen = process.env.TIDEMARK_LISTEN ?? '';
let url = process.env.TIDEMARK_HEALTHCHECK_URL;
if (!url) {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!m) {
    console.error(`health check: TIDEMARK_LISTEN ${JSON.stringify(listen)} is not HOST:PORT (or set TIDEMARK_HEALTHCHECK_URL)`);
    process.exit(1);
  }
  // A wildcard address is reached through loopback.
  let host = m[1] ?? m[2];
  if (!host || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  url = `http://${host.includes(':') ? `[${host}]` : host}:${m[3]}/healthz`;
}
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = await res.json().catch(() => ({}));
  if (res.ok && body.ok === true) process.exit(0);
  console.error(`health check: ${url} answered ${res.status}`);
} catch (e) {
  console.error(`health check: ${url}: ${e.cause?.message ?? e.message}`);
}
process.exit(1);
