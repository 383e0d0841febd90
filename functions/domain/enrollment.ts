/**
 * Enrollment: a component presents a registration key and receives its own credential.
 * Process servers and master targets become servers of a site (created on first use by
 * name); an agent becomes a machine whose disks are discovered from what it reports.
 */
import { createHash } from 'node:crypto';
import type { EnrollRequest, EnrollResponse } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { derivedId, newId } from './ids.ts';
import { keys } from './keys.ts';
import { redeemRegistrationKey } from './registration-keys.ts';
import type { Credential, Disk, Machine, Server, Site, SitePrincipal } from './records.ts';
import { issueSecret } from './tokens.ts';
import { checkedRequest, issueCertificate, type IssuedCertificate } from './certificate-authority.ts';

/** The host of a server's URL, which its certificate names (none without a URL). */
function hostsOf(url: string | undefined): string[] {
  return url ? [new URL(url).hostname.replace(/^\[|\]$/g, '')] : [];
}

/** The certificate fields of the answer, when the component sent a request. */
function certificateFields(issued: IssuedCertificate | undefined): Pick<EnrollResponse, 'certificate' | 'caCertificate'> {
  return issued ? { certificate: issued.certificate, caCertificate: issued.caCertificate } : {};
}

/** Most disks one agent may report. */
export const MAX_DISKS_PER_MACHINE = 64;

/** The site of `siteName` in the vault, created on first use (its id derives from the name). */
async function ensureSite(ctx: Context, vaultId: string, siteName: string): Promise<Site> {
  const id = derivedId('site', createHash('sha256').update(`${vaultId}/${siteName}`).digest());
  const site: Site = { id, vaultId, name: siteName, createdAt: nowIso(ctx) };
  try {
    await ctx.repo.create(keys.item(vaultId, 'sites', id), site);
    return site;
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    return site;
  }
}

async function issueCredential(ctx: Context, vaultId: string, principal: SitePrincipal): Promise<string> {
  const id = newId('credential');
  const secret = issueSecret(id);
  const record: Credential = { id, vaultId, principal, secretSha256: secret.secretSha256, createdAt: nowIso(ctx), revoked: false };
  await ctx.repo.create(keys.credential(id), record);
  return secret.token;
}

export async function enroll(ctx: Context, req: EnrollRequest): Promise<EnrollResponse> {
  // A bad request is refused before the key's use is counted.
  if (req.csr) await checkedRequest(req.csr);
  const key = await redeemRegistrationKey(ctx, req.registrationKey);
  const vaultId = key.vaultId;
  const site = await ensureSite(ctx, vaultId, req.siteName);
  const at = nowIso(ctx);

  if (req.role === 'agent') {
    if (!req.disks || req.disks.length === 0) throw new InvalidRequestError('an agent must report at least one disk', { field: 'disks' });
    const disks: Disk[] = req.disks.map((d) => ({
      id: newId('disk'), name: d.name, sizeBytes: d.sizeBytes,
      state: null, lagSeconds: null, backlogBytes: null, latestPoint: null, reportedAt: null,
    }));
    const machineId = newId('machine');
    const issued = req.csr ? await issueCertificate(ctx, { vaultId, role: 'agent', id: machineId, name: req.name }, req.csr) : undefined;
    const machine: Machine = {
      id: machineId, vaultId, siteId: site.id, name: req.name,
      hostname: req.hostname ?? req.name, os: req.os ?? 'unknown', disks, protection: null, enrolledAt: at,
    };
    await ctx.repo.create(keys.item(vaultId, 'machines', machine.id), machine);
    const credential = await issueCredential(ctx, vaultId, { kind: 'agent', machineId: machine.id });
    ctx.log.info('agent enrolled', { vaultId, machineId: machine.id, disks: disks.length, registrationKeyId: key.id });
    return {
      vaultId, siteId: site.id, role: 'agent', credential, machineId: machine.id,
      disks: disks.map((d) => ({ id: d.id, name: d.name, sizeBytes: d.sizeBytes })), ...certificateFields(issued),
    };
  }

  const serverId = newId('server');
  const issued = req.csr ? await issueCertificate(ctx, { vaultId, role: req.role, id: serverId, name: req.name }, req.csr, hostsOf(req.url)) : undefined;
  const server: Server = {
    id: serverId, vaultId, siteId: site.id, role: req.role, name: req.name,
    url: req.url ?? null, enrolledAt: at, lastHeartbeatAt: null, softwareVersion: req.softwareVersion ?? null,
  };
  await ctx.repo.create(keys.item(vaultId, 'servers', server.id), server);
  const credential = await issueCredential(ctx, vaultId, { kind: 'server', serverId: server.id, role: req.role });
  ctx.log.info('server enrolled', { vaultId, serverId: server.id, role: req.role, registrationKeyId: key.id });
  return { vaultId, siteId: site.id, role: req.role, credential, serverId: server.id, ...certificateFields(issued) };
}
