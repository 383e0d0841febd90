import { after, before } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../functions/store/s3-object-store.ts';
import { objectStoreContract } from './support/object-store-contract.ts';
import { startLocalAws, type LocalAws } from './support/fauxqs.ts';

// The contract's cases are declared before the server starts; `open` runs inside them.
let aws: LocalAws;
let n = 0;
before(async () => {
  aws = await startLocalAws();
});
after(() => aws.stop());

/**
 * Whether the server under test honours conditional PUT: a second If-None-Match:* write of
 * one key must fail. fauxqs 1.9.2 lets it through; real S3 refuses it with 412.
 */
async function serverHonoursConditionalPut(): Promise<boolean> {
  const local = await startLocalAws();
  try {
    await local.s3.send(new CreateBucketCommand({ Bucket: 'probe' }));
    const put = () => local.s3.send(new PutObjectCommand({ Bucket: 'probe', Key: 'k', Body: 'x', IfNoneMatch: '*' }));
    await put();
    try {
      await put();
      return false;
    } catch {
      return true;
    }
  } finally {
    await local.stop();
  }
}

const honoured = await serverHonoursConditionalPut();

objectStoreContract('S3 (fauxqs)', {
  open: async () => {
    const bucket = `contract-${n++}`;
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    return new S3ObjectStore({ client: aws.s3, bucket, keyPrefix: 'tidemark/' });
  },
  skipConditional: honoured
    ? false
    : 'the local S3 server (fauxqs 1.9.2) ignores If-Match / If-None-Match on PutObject; ' +
      'conditional writes are proven on the embedded store here and rely on real S3 in AWS',
});
