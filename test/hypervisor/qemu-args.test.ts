import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driveOption, nicOption, qemuArgs } from '../../master-target/hypervisor/qemu-args.ts';
import type { MachineSettings } from '../../master-target/hypervisor/adapter.ts';

const paths = { accel: 'tcg' as const, consoleLogPath: '/s/m.console.log', qmpSocketPath: '/s/m.qmp', overlayPaths: new Map([[1, '/s/m.disk1.overlay.qcow2']]) };

test('drive options follow the disk access', () => {
  assert.equal(driveOption({ source: 'nbd://127.0.0.1:10809/a', access: 'read-only' }, 0, undefined),
    'if=none,id=disk0,file=nbd://127.0.0.1:10809/a,format=raw,readonly=on');
  assert.equal(driveOption({ source: 'nbd://h:1/a', access: 'snapshot' }, 2, undefined), 'if=none,id=disk2,file=nbd://h:1/a,format=raw,snapshot=on');
  assert.equal(driveOption({ source: 'nbd://h:1/a', access: 'overlay' }, 1, '/s/o.qcow2'), 'if=none,id=disk1,file=/s/o.qcow2,format=qcow2');
  assert.equal(driveOption({ source: '/img/a,b.qcow2', format: 'qcow2', access: 'read-write' }, 0, undefined), 'if=none,id=disk0,file=/img/a,,b.qcow2,format=qcow2');
  assert.throws(() => driveOption({ source: '/a.img', access: 'overlay' }, 0, undefined));
});

test('networks: none, isolated with restrict=on, user', () => {
  assert.equal(nicOption('none'), 'none');
  assert.equal(nicOption('isolated'), 'user,model=virtio-net-pci,restrict=on');
  assert.equal(nicOption('user'), 'user,model=virtio-net-pci');
});

test('kernel boot and disk boot command lines', () => {
  const base: MachineSettings = {
    name: 'm', cpus: 2, memoryMiB: 512, network: 'isolated',
    disks: [{ source: '/img/a.img', access: 'read-only' }, { source: 'nbd://h:1/b', access: 'overlay' }],
    boot: { mode: 'kernel', kernelPath: '/k/vmlinuz', initrdPath: '/k/initrd.gz' },
  };
  const kernel = qemuArgs(base, paths).join(' ');
  assert.match(kernel, /-machine q35,accel=tcg -smp 2 -m 512 -nodefaults/);
  assert.match(kernel, /-serial file:\/s\/m\.console\.log/);
  assert.match(kernel, /-no-reboot -kernel \/k\/vmlinuz -initrd \/k\/initrd\.gz -append console=ttyS0 quiet panic=-1/);
  assert.match(kernel, /file=\/s\/m\.disk1\.overlay\.qcow2,format=qcow2 -device virtio-blk-pci,drive=disk1/);
  assert.doesNotMatch(kernel, /accel=kvm:tcg|bootindex/);
  const disk = qemuArgs({ ...base, boot: { mode: 'disk' } }, { ...paths, accel: 'kvm' }).join(' ');
  assert.match(disk, /accel=kvm -cpu host/);
  assert.match(disk, /virtio-blk-pci,drive=disk0,bootindex=0/);
  assert.doesNotMatch(disk, /-kernel|-no-reboot/);
});
