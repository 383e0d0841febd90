import { TidemarkError } from '../../core/errors.ts';

/** `qemu-img` failed or is missing. */
export class MaterialiseError extends TidemarkError {}
