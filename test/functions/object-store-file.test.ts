import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { FileObjectStore } from '../../functions/store/file-object-store.ts';
import { objectStoreContract } from './support/object-store-contract.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-objects-'));
after(() => rm(root, { recursive: true, force: true }));
let n = 0;

objectStoreContract('embedded directory', {
  open: () => FileObjectStore.open(join(root, String(n++))),
  skipConditional: false,
});
