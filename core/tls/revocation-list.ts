/**
 * The vault's revoked certificates as a process server or master target last fetched them
 * from the control plane (`GET /api/v1/site/revocations`), kept in `revocations.json` of its
 * data folder so that a restart without the control plane still refuses them. Format version
 * 1 (docs/security.md):
 * `{ "v": 1, "vaultId", "fetchedAt", "revoked": [{ "serial", "revokedAt", "notAfter", "role", "subjectId", "name" }] }`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.ts';
import type { RevocationListResponse, RevokedCertificateEntry } from '../control-plane/protocol.ts';
import type { RevokedSerials } from './tls-identity.ts';
import { normalizeSerial } from './serial.ts';

export const REVOCATIONS_FILE = 'revocations.json';
export const REVOCATIONS_FILE_VERSION = 1;

interface RevocationsFile {
  v: 1;
  vaultId: string;
  fetchedAt: string;
  revoked: RevokedCertificateEntry[];
}

export class RevocationList implements RevokedSerials {
  #bySerial = new Map<string, RevokedCertificateEntry>();
  #text = '';
  #revision = 0;

  private constructor(private readonly path: string, readonly vaultId: string) {}

  /** The list kept in `dir`, or an empty one; refuses a file of another version or vault. */
  static async open(dir: string, vaultId: string): Promise<RevocationList> {
    const list = new RevocationList(join(dir, REVOCATIONS_FILE), vaultId);
    const text = await readFile(list.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text !== undefined) {
      const f = JSON.parse(text) as RevocationsFile;
      if (f.v !== REVOCATIONS_FILE_VERSION) throw new Error(`${list.path} has unknown format version ${String(f.v)}`);
      if (f.vaultId !== vaultId) throw new Error(`${list.path} is the list of vault ${f.vaultId}, not ${vaultId}`);
      list.#set(f.revoked);
    }
    return list;
  }

  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#bySerial.size;
  }

  revokedAt(serial: string): string | undefined {
    return this.#bySerial.get(normalizeSerial(serial))?.revokedAt;
  }

  /** The entry of a revoked serial. */
  entry(serial: string): RevokedCertificateEntry | undefined {
    return this.#bySerial.get(normalizeSerial(serial));
  }

  /** Takes the list the control plane served; kept on disk when it changed. True if it changed. */
  async replace(served: RevocationListResponse, fetchedAtMs: number): Promise<boolean> {
    if (served.v !== REVOCATIONS_FILE_VERSION) throw new Error(`revocation list of unknown version ${String(served.v)}`);
    if (served.vaultId !== this.vaultId) throw new Error(`revocation list of vault ${served.vaultId}, not ${this.vaultId}`);
    const { revoked, text } = canonical(served.revoked);
    if (text === this.#text) return false;
    const f: RevocationsFile = { v: 1, vaultId: this.vaultId, fetchedAt: new Date(fetchedAtMs).toISOString(), revoked };
    await writeFileAtomic(this.path, JSON.stringify(f, null, 2) + '\n');
    this.#set(revoked, text);
    return true;
  }

  #set(revoked: readonly RevokedCertificateEntry[], text = canonical(revoked).text): void {
    this.#bySerial = new Map(revoked.map((r) => [normalizeSerial(r.serial), r]));
    this.#text = text;
    this.#revision++;
  }
}

/** The entries in serial order, and their JSON: equal texts mean an unchanged list. */
function canonical(entries: readonly RevokedCertificateEntry[]): { revoked: RevokedCertificateEntry[]; text: string } {
  const revoked = [...entries].sort((a, b) => a.serial.localeCompare(b.serial));
  return { revoked, text: JSON.stringify(revoked) };
}
