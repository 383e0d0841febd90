import { after, before } from 'node:test';
import { SqsQueueProvider } from '../../functions/queue/sqs-queue.ts';
import { queueContract } from './support/queue-contract.ts';
import { startLocalAws, type LocalAws } from './support/fauxqs.ts';

let aws: LocalAws;
let provider: SqsQueueProvider;
before(async () => {
  aws = await startLocalAws();
  provider = new SqsQueueProvider({ client: aws.sqs, namePrefix: 'tm-test-', maxReceiveCount: 2 });
});
after(() => aws.stop());

queueContract('SQS (fauxqs)', { provider: () => provider });
