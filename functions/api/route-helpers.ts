/** Small builders that keep route definitions short: bodies, responses, path parameters. */
import { z } from '@hono/zod-openapi';

export const ErrorBody = z.object({ error: z.string(), field: z.string().optional(), hint: z.string().optional() }).openapi('Error');

export const errorResponses = {
  400: { description: 'invalid request; `field` names the offending field', content: { 'application/json': { schema: ErrorBody } } },
  401: { description: 'missing or unknown credential', content: { 'application/json': { schema: ErrorBody } } },
  403: { description: 'the credential may not do this', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'no such resource', content: { 'application/json': { schema: ErrorBody } } },
} as const;

export function jsonBody<S extends z.ZodType>(schema: S) {
  return { required: true, content: { 'application/json': { schema } } };
}

export function jsonResponse<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** A list response: `{ items: [...] }`. */
export function listOf<S extends z.ZodType>(schema: S) {
  return z.object({ items: z.array(schema) });
}

/**
 * Path parameters are plain strings here: ids are checked by pattern in the domain, so a
 * malformed id answers 404 like an unknown one.
 */
export function pathParams<K extends string>(...names: K[]) {
  const shape = Object.fromEntries(
    names.map((n) => [n, z.string().max(128).openapi({ param: { name: n, in: 'path' }, example: `${n.replace(/Id$/, '').slice(0, 3)}_…` })]),
  ) as Record<K, z.ZodString>;
  return z.object(shape);
}

export const bearer = [{ bearer: [] as string[] }];
