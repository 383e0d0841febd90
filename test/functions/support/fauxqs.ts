/**
 * Starts fauxqs (an in-memory S3 + SQS server) in this process on a free port and gives AWS
 * SDK clients pointed at it through 127.0.0.1. fauxqs 1.9.2 binds 0.0.0.0 (not configurable);
 * its `host` option only names queue URLs, so it is left unset and queue URLs carry the
 * request's own host.
 */
import { startFauxqs } from 'fauxqs';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

export interface LocalAws {
  readonly endpoint: string;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  stop(): Promise<void>;
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export async function startLocalAws(): Promise<LocalAws> {
  const server = await startFauxqs({ port: 0, logger: false });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  const sqs = new SQSClient({ endpoint, region: 'us-east-1', credentials });
  return {
    endpoint,
    s3,
    sqs,
    async stop() {
      s3.destroy();
      sqs.destroy();
      await server.stop();
    },
  };
}
