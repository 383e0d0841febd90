import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { probeKvm } from '../../master-target/hypervisor/kvm-probe.ts';
import { missingBootPackages } from '../fixtures/bootable/build.ts';

const missing = await missingBootPackages();
const skip = missing.length ? `missing Debian packages ${missing.join(', ')}` : false;

// On the machines this project runs on, /dev/kvm exists but a KVM guest crawls (the firmware
// alone needs about 9 s): the probe must give up after its short timeout and choose TCG.
// Set TIDEMARK_KVM_WORKS=1 on a host where KVM is healthy.
test('the kvm probe answers within its timeout and falls back to tcg here', { skip, timeout: 30_000 }, async () => {
  const result = await probeKvm({ timeoutMs: 3000 });
  assert.ok(result.elapsedMs < 3000 + 2000, `probe took ${result.elapsedMs} ms`);
  if (process.env.TIDEMARK_KVM_WORKS === '1') {
    assert.equal(result.accel, 'kvm');
  } else {
    assert.equal(result.accel, 'tcg');
    assert.equal(result.reason, existsSync('/dev/kvm') ? 'kvm probe timed out' : 'no usable /dev/kvm');
  }
});

test('the kvm probe chooses tcg without a kvm device or a qemu binary', async () => {
  assert.deepEqual((await probeKvm({ kvmDevice: '/nonexistent/kvm' })).accel, 'tcg');
  const noQemu = await probeKvm({ qemuPath: '/nonexistent/qemu-system-x86_64', kvmDevice: existsSync('/dev/kvm') ? '/dev/kvm' : '/dev/null' });
  assert.equal(noQemu.accel, 'tcg');
});
