/**
 * Lambda entry of the site-events consumer, triggered by the site-events SQS queue with
 * `ReportBatchItemFailures`: messages that fail are reported and come back (and, after too
 * many receives, go to the dead-letter queue); the others are deleted by Lambda.
 */
import { awsDeps } from '../aws-deps.ts';
import { readConfig } from '../config.ts';
import { contextOf, type Context } from '../deps.ts';
import { applySiteEvent, parseSiteEvent } from '../domain/site-events.ts';

/** The part of an SQS event this handler reads. */
export interface SqsEvent {
  Records: { messageId: string; body: string; eventSource?: string }[];
}

export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

let ctx: Context | undefined;

export async function siteEventsHandler(event: SqsEvent): Promise<SqsBatchResponse> {
  ctx ??= contextOf(awsDeps(readConfig(), 'control-plane-site-events'));
  const failures: SqsBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    try {
      await applySiteEvent(ctx, parseSiteEvent(record.body));
    } catch (err) {
      ctx.log.error('site event failed', { messageId: record.messageId, error: err as Error });
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures: failures };
}

export { siteEventsHandler as handler };
