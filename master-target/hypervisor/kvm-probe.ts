/**
 * Does KVM work here? `/dev/kvm` may exist and still hang a guest (it does on some hosts), and
 * `accel=kvm:tcg` only falls back when KVM fails to open, not when it hangs. So we run the
 * firmware alone under `accel=kvm` and require it to reach its boot stage within a short time;
 * otherwise the machine runs under TCG.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import type { Logger } from '../../core/log.ts';
import { silentLogger } from '../../core/log.ts';

/** How long the firmware gets under KVM to reach its boot stage. */
export const DEFAULT_KVM_PROBE_TIMEOUT_MS = 3000;

/** SeaBIOS prints these on its debug port once it has run its option ROMs and tries to boot. */
const FIRMWARE_BOOT_STAGE = /No bootable device|Booting from/;

export interface KvmProbeResult {
  accel: 'kvm' | 'tcg';
  /** Why: `kvm answered`, `no /dev/kvm`, `kvm probe timed out`, ... */
  reason: string;
  elapsedMs: number;
}

export interface KvmProbeOptions {
  qemuPath?: string;
  timeoutMs?: number;
  /** Device to check before probing; @default '/dev/kvm'. */
  kvmDevice?: string;
  log?: Logger;
}

/** Runs the probe once: at most `timeoutMs` plus the time to kill the probe process. */
export async function probeKvm(options: KvmProbeOptions = {}): Promise<KvmProbeResult> {
  const qemuPath = options.qemuPath ?? 'qemu-system-x86_64';
  const timeoutMs = options.timeoutMs ?? DEFAULT_KVM_PROBE_TIMEOUT_MS;
  const log = options.log ?? silentLogger;
  const started = Date.now();
  try {
    await access(options.kvmDevice ?? '/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return done({ accel: 'tcg', reason: 'no usable /dev/kvm', elapsedMs: 0 });
  }
  const args = ['-machine', 'q35,accel=kvm', '-m', '64', '-nodefaults', '-display', 'none', '-no-reboot',
    '-debugcon', 'stdio', '-global', 'isa-debugcon.iobase=0x402', '-serial', 'none', '-monitor', 'none'];
  const reason = await new Promise<string>((resolve) => {
    const child = spawn(qemuPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let answer = '';
    const finish = (why: string) => {
      if (answer) return;
      answer = why;
      clearTimeout(timer);
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => finish('kvm probe timed out'), timeoutMs);
    child.stdout.setEncoding('latin1').on('data', (d: string) => {
      out = (out + d).slice(-4096);
      if (FIRMWARE_BOOT_STAGE.test(out)) finish('kvm answered');
    });
    child.stderr.resume();
    child.once('error', (err) => { finish(`cannot run ${qemuPath}: ${err.message}`); resolve(answer); });
    child.once('close', (code) => { finish(`kvm probe exited with code ${code}`); resolve(answer); });
  });
  return done({ accel: reason === 'kvm answered' ? 'kvm' : 'tcg', reason, elapsedMs: Date.now() - started });

  function done(result: KvmProbeResult): KvmProbeResult {
    log.info('kvm probe', { accel: result.accel, reason: result.reason, elapsedMs: result.elapsedMs });
    return result;
  }
}
