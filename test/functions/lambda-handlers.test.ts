/**
 * The three Lambda entries, called with fixture events (API Gateway HTTP API 2.0, SQS,
 * EventBridge schedule) and configured through the environment as CDK configures them,
 * against S3 and SQS served by fauxqs in this process.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { bootstrapHashOf } from '../../functions/domain/authenticate.ts';
import { startLocalAws, type LocalAws } from './support/fauxqs.ts';

const fixture = async (name: string) => JSON.parse(await readFile(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
const adminToken = 'bootstrap-admin-token-for-tests';
let aws: LocalAws;
let siteEventsUrl: string;

before(async () => {
  aws = await startLocalAws();
  await aws.s3.send(new CreateBucketCommand({ Bucket: 'tm-state' }));
  siteEventsUrl = (await aws.sqs.send(new CreateQueueCommand({ QueueName: 'tm-site-events' }))).QueueUrl!;
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
    TIDEMARK_BUCKET: 'tm-state', TIDEMARK_SITE_EVENTS_QUEUE_URL: siteEventsUrl, TIDEMARK_SITE_QUEUE_PREFIX: 'tm-site-',
    TIDEMARK_ADMIN_TOKEN_SHA256: bootstrapHashOf(adminToken), TIDEMARK_AWS_ENDPOINT: aws.endpoint, TIDEMARK_LOG_LEVEL: 'error',
  });
});
after(() => aws.stop());

async function apiCall(method: string, path: string, body?: unknown, token: string | null = adminToken) {
  const { handler } = await import('../../functions/lambda/api.ts');
  const event = await fixture('api-gateway-v2-event.json');
  const [rawPath, rawQueryString = ''] = path.split('?');
  event.rawPath = rawPath;
  event.rawQueryString = rawQueryString;
  event.requestContext.http.method = method;
  event.requestContext.http.path = rawPath;
  if (token) event.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) event.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await handler(event);
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

let vaultId: string;
let mtCredential: string;

it('api: serves the Hono app from API Gateway events, bootstrap admin token included', async () => {
  const created = await apiCall('POST', '/api/v1/vaults', { name: 'lambda' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  vaultId = created.body.id;
  assert.equal((await apiCall('GET', '/api/v1/vaults')).body.items.length, 1);
  assert.equal((await apiCall('GET', '/api/v1/vaults', undefined, null)).status, 401);
  assert.equal((await apiCall('POST', '/api/v1/vaults', '{oops')).status, 400);
  assert.equal((await apiCall('GET', `/api/v1/vaults/${vaultId}/audit?limit=1`)).body.items[0].actor.name, 'bootstrap admin');

  const { key } = (await apiCall('POST', `/api/v1/vaults/${vaultId}/registration-keys`, {})).body;
  const enrolled = await apiCall('POST', '/api/v1/enroll', { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr' }, null);
  assert.equal(enrolled.status, 201);
  mtCredential = enrolled.body.credential;
  const polled = await apiCall('GET', '/api/v1/site/commands?waitSeconds=0', undefined, mtCredential);
  assert.deepEqual(polled.body, { commands: [] });
});

it('site events: applies a heartbeat from the queue and reports the malformed record as failed', async () => {
  const hb = await apiCall('POST', '/api/v1/site/heartbeat', { softwareVersion: '9.9.9', disks: [] }, mtCredential);
  assert.equal(hb.status, 202);
  const queued = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: siteEventsUrl, MaxNumberOfMessages: 10 }));
  assert.equal(queued.Messages?.length, 1);

  const { handler } = await import('../../functions/lambda/site-events.ts');
  const event = await fixture('sqs-event.json');
  const good = { ...event.Records[0], messageId: 'good', body: queued.Messages![0]!.Body };
  const bad = { ...event.Records[0], messageId: 'bad', body: '{"v":99}' };
  const res = await handler({ Records: [good, bad] });
  assert.deepEqual(res, { batchItemFailures: [{ itemIdentifier: 'bad' }] });

  const servers = await apiCall('GET', `/api/v1/vaults/${vaultId}/servers`);
  assert.equal(servers.body.items[0].softwareVersion, '9.9.9');
  assert.ok(servers.body.items[0].lastHeartbeatAt);
});

it('drill runner: runs one scheduled pass over every vault', async () => {
  const { handler } = await import('../../functions/lambda/drill-runner.ts');
  const summary = await handler(await fixture('scheduled-event.json'));
  assert.deepEqual(summary, { vaults: 1, jobsExpired: 0 });
});
