// The images' health check: GET /healthz on the server's own listen address, in Node because the
// image may have no curl or shell. Exits 0 when the server answers {"ok":true}. A server that
// speaks TLS is asked again over https; /healthz carries no secret either way, so the probe
// does not verify the certificate of this loopback peer.
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 4000;

function target() {
  if (process.env.TIDEMARK_HEALTHCHECK_URL) return new URL(process.env.TIDEMARK_HEALTHCHECK_URL);
  const listen = process.env.TIDEMARK_LISTEN ?? '';
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`TIDEMARK_LISTEN ${JSON.stringify(listen)} is not HOST:PORT (or set TIDEMARK_HEALTHCHECK_URL)`);
  // A wildcard address is reached through loopback.
  let host = m[1] ?? m[2];
  if (!host || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${m[3]}/healthz`);
}

function get(url) {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.get(url, { timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

async function check(url) {
  const res = await get(url);
  let ok = false;
  try {
    ok = JSON.parse(res.body).ok === true;
  } catch {}
  if (res.status !== 200 || !ok) throw new Error(`answered ${res.status}`);
}

let url;
try {
  url = target();
  try {
    await check(url);
  } catch (e) {
    // A TLS listener drops a plain request; anything else (refused, timed out, unhealthy) stands.
    const tlsOnly = ['ECONNRESET', 'EPROTO', 'HPE_INVALID_CONSTANT'].includes(e.code) || /socket hang up/.test(e.message);
    if (url.protocol !== 'http:' || !tlsOnly) throw e;
    url = new URL(url.href.replace(/^http:/, 'https:'));
    await check(url);
  }
  process.exit(0);
} catch (e) {
  console.error(`health check: ${url ? `${url.href}: ` : ''}${e.message}`);
  process.exit(1);
}
