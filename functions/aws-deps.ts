/** The control plane on AWS: S3 for state, SQS for site commands and site events. */
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createLogger } from '../core/log.ts';
import type { LambdaConfig } from './config.ts';
import { DEFAULT_SETTINGS, type ControlPlaneDeps } from './deps.ts';
import { SITE_EVENTS_QUEUE } from './embedded-deps.ts';
import { SqsQueue, SqsQueueProvider } from './queue/sqs-queue.ts';
import { S3ObjectStore } from './store/s3-object-store.ts';

export function awsDeps(config: LambdaConfig, component: string): ControlPlaneDeps {
  const endpoint = config.awsEndpoint ? { endpoint: config.awsEndpoint } : {};
  const s3 = new S3Client({ ...endpoint, forcePathStyle: config.awsEndpoint !== null });
  const sqs = new SQSClient({ ...endpoint });
  return {
    store: new S3ObjectStore({ client: s3, bucket: config.bucket, keyPrefix: config.keyPrefix }),
    siteQueues: new SqsQueueProvider({
      client: sqs, namePrefix: config.siteQueuePrefix, maxReceiveCount: config.maxReceiveCount, tags: { 'tidemark:role': 'site-commands' },
    }),
    siteEvents: new SqsQueue(sqs, config.siteEventsQueueUrl, SITE_EVENTS_QUEUE),
    now: Date.now,
    log: createLogger(component, { level: config.logLevel }),
    settings: { ...DEFAULT_SETTINGS, bootstrapAdminTokenSha256: config.bootstrapAdminTokenSha256, certificateValiditySeconds: config.certificateValidityDays * 86_400 },
  };
}
