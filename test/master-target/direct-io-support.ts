/** Test support for O_DIRECT: whether a folder takes it, and a folder on a filesystem that refuses it. */
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Whether files in `dir` can be opened with O_DIRECT. */
export async function takesDirectIo(dir: string): Promise<boolean> {
  const probe = join(dir, `.direct-probe-${process.pid}`);
  const fh = await open(probe, 'wx');
  await fh.close();
  try {
    await (await open(probe, constants.O_WRONLY | constants.O_DIRECT)).close();
    return true;
  } catch {
    return false;
  } finally {
    await unlink(probe);
  }
}

/** A ramfs mounted in a fresh folder (it refuses O_DIRECT), or undefined where mounting is not allowed. */
export async function mountRamfs(parent: string): Promise<{ path: string; unmount(): Promise<void> } | undefined> {
  const path = join(parent, 'ramfs');
  await mkdir(path);
  try {
    execFileSync('mount', ['-t', 'ramfs', 'none', path], { stdio: 'ignore' });
  } catch {
    await rmdir(path);
    return undefined;
  }
  return {
    path,
    unmount: async () => {
      execFileSync('umount', [path]);
      await rmdir(path);
    },
  };
}
