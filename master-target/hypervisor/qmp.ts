/**
 * A one-shot QMP client: connect to a machine's QMP socket, negotiate, run one command, close.
 * Enough to ask a guest to power off and to learn that QEMU finished starting.
 */
import { connect } from 'node:net';
import { HypervisorError } from './errors.ts';

/** Runs one QMP command and resolves with its `return` value; rejects on error or after `timeoutMs`. */
export function qmpCommand(socketPath: string, command: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buffered = '';
    let step: 'greeting' | 'capabilities' | 'command' = 'greeting';
    const fail = (message: string, cause?: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new HypervisorError(message, { cause, hint: 'check that the machine is running and its state directory is intact' }));
    };
    const timer = setTimeout(() => fail(`qmp ${command} got no answer within ${timeoutMs} ms`), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (err) => fail(`cannot reach the qmp socket ${socketPath}`, err));
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event) continue;
        if (step === 'greeting' && msg.QMP) {
          step = 'capabilities';
          sock.write('{"execute":"qmp_capabilities"}\n');
        } else if (msg.error) {
          return fail(`qmp ${step === 'command' ? command : 'qmp_capabilities'} failed: ${msg.error.desc ?? 'unknown error'}`);
        } else if (step === 'capabilities' && 'return' in msg) {
          step = 'command';
          sock.write(JSON.stringify({ execute: command }) + '\n');
        } else if (step === 'command' && 'return' in msg) {
          clearTimeout(timer);
          sock.end();
          return resolve(msg.return);
        }
      }
    });
  });
}
