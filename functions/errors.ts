/**
 * The control plane's error families. Messages are lowercase and say what failed; the API
 * maps each family to one HTTP status in `api/error-handler.ts`.
 */
import { TidemarkError } from '../core/errors.ts';

/** A request that does not satisfy its schema or a rule of the domain (HTTP 400). */
export class InvalidRequestError extends TidemarkError {
  readonly field?: string;
  constructor(message: string, options: { field?: string; hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.field = options.field;
  }
}

/** No credential, an unknown one, or an expired one (HTTP 401). */
export class UnauthenticatedError extends TidemarkError {}

/** A valid credential that may not do this (HTTP 403). */
export class ForbiddenError extends TidemarkError {}

/** An id that names nothing, or that is not an id at all (HTTP 404). */
export class NotFoundError extends TidemarkError {}

/** A request that conflicts with the current state, e.g. a job already finished (HTTP 409). */
export class ConflictError extends TidemarkError {}

/**
 * A conditional write lost: the object changed (If-Match) or already exists (If-None-Match).
 * Callers re-read and retry; it never reaches an HTTP client except as a 409 after retries.
 */
export class PreconditionFailedError extends TidemarkError {
  readonly key: string;
  constructor(key: string, options: { cause?: unknown } = {}) {
    super(`conditional write of ${key} failed: the object changed`, options);
    this.key = key;
  }
}

/** A backend (object store, queue) failed or answered something unexpected (HTTP 503). */
export class BackendError extends TidemarkError {}
