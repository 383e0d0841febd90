/**
 * A vault and its CA on the embedded store (real clock, so that certificates are valid now),
 * issuing identities the way enrollment does: the key is made here, only its CSR is signed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextOf } from '../../functions/deps.ts';
import { openEmbeddedDeps } from '../../functions/embedded-deps.ts';
import { createVault } from '../../functions/domain/vaults.ts';
import { issueCertificate } from '../../functions/domain/certificate-authority.ts';
import { newId } from '../../functions/domain/ids.ts';
import { silentLogger } from '../../core/log.ts';
import type { IdentityRole } from '../../core/tls/identity.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';

export interface TestVault {
  readonly vaultId: string;
  /** A new identity of `role` named `name`; `hosts` make it a server certificate. */
  issue(role: IdentityRole, name: string, hosts?: string[]): Promise<TlsIdentity & { id: string }>;
  close(): Promise<void>;
}

const ID_KIND = { agent: 'machine', 'process-server': 'server', 'master-target': 'server', operator: 'certificate' } as const;

export async function makeVault(name: string): Promise<TestVault> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tidemark-vault-'));
  const ctx = contextOf(await openEmbeddedDeps({ dataDir, now: Date.now, log: silentLogger }));
  const vault = await createVault(ctx, { tokenId: 'test', name: 'test', role: 'admin' }, { name });
  return {
    vaultId: vault.id,
    async issue(role, name, hosts = []) {
      const keys = await generateKeyPair();
      const id = newId(ID_KIND[role]);
      const issued = await issueCertificate(ctx, { vaultId: vault.id, role, id, name }, await createCsr(keys, name), hosts);
      return { id, ca: issued.caCertificate, cert: issued.certificate, key: keys.privateKeyPem };
    },
    close: () => rm(dataDir, { recursive: true, force: true }),
  };
}
