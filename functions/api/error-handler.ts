/**
 * One place that shapes error responses: `{ error, field?, hint? }` with the status of the
 * error's family. Unexpected errors are logged and answered 500 without details.
 */
import type { Context as HonoContext } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { z } from '@hono/zod-openapi';
import type { Logger } from '../../core/log.ts';
import {
  BackendError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  UnauthenticatedError,
} from '../errors.ts';

export interface ErrorBody {
  error: string;
  field?: string;
  hint?: string;
}

type Status = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 | 503;

export function statusOf(err: unknown): Status {
  if (err instanceof InvalidRequestError) return 400;
  if (err instanceof UnauthenticatedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof BackendError) return 503;
  return 500;
}

export function errorHandler(log: Logger) {
  return (err: Error, c: HonoContext) => {
    if (err instanceof HTTPException) {
      const status = err.status as Status;
      const message = status === 400 && /json/i.test(err.message) ? 'malformed json in request body' : err.message.toLowerCase();
      return c.json({ error: message || 'bad request' } satisfies ErrorBody, status);
    }
    const status = statusOf(err);
    if (status >= 500) {
      log.error('request failed', { method: c.req.method, path: c.req.path, error: err });
      return c.json({ error: status === 503 ? 'a backend is unavailable' : 'internal error', hint: 'retry later' } satisfies ErrorBody, status);
    }
    const body: ErrorBody = { error: err.message };
    if (err instanceof InvalidRequestError && err.field) body.field = err.field;
    const hint = (err as { hint?: string }).hint;
    if (hint) body.hint = hint;
    return c.json(body, status);
  };
}

/** The zod-openapi hook: a request that fails its schema gets 400 naming the first bad field. */
export function validationHook(result: { success: boolean; error?: z.ZodError; target?: string }, c: HonoContext) {
  if (result.success || !result.error) return;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.') || (result.target ?? 'body');
  const where = result.target === 'query' ? 'query parameter' : result.target === 'param' ? 'path parameter' : 'field';
  return c.json({ error: `invalid ${where} ${field}: ${issue.message.toLowerCase()}`, field } satisfies ErrorBody, 400);
}
