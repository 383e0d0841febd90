/**
 * Lambda entry of the HTTP API (API Gateway HTTP API, payload 2.0): the same Hono app as
 * everywhere, adapted by `hono/aws-lambda`. Built once per container, on first use.
 */
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { createApp } from '../app.ts';
import { awsDeps } from '../aws-deps.ts';
import { readConfig } from '../config.ts';

let handler: ReturnType<typeof handle> | undefined;

export async function apiHandler(event: LambdaEvent, context?: LambdaContext) {
  handler ??= handle(createApp(awsDeps(readConfig(), 'control-plane-api')));
  return handler(event, context);
}

export { apiHandler as handler };
