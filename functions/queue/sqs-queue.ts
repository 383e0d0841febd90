/**
 * Queues on SQS. `SqsQueue` wraps one queue by URL (the site-events queue made by CDK);
 * `SqsQueueProvider` creates per-site queues on first use, each with a redrive policy to its
 * dead-letter queue and SQS-managed encryption.
 */
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { BackendError } from '../errors.ts';
import {
  checkQueueName,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
  MAX_WAIT_SECONDS,
  type MessageQueue,
  type QueueProvider,
  type ReceivedMessage,
  type ReceiveOptions,
} from './message-queue.ts';

export class SqsQueue implements MessageQueue {
  readonly name: string;
  readonly url: string;
  readonly #client: SQSClient;

  constructor(client: SQSClient, url: string, name: string) {
    this.#client = client;
    this.url = url;
    this.name = name;
  }

  async send(body: string, options: { signal?: AbortSignal } = {}): Promise<{ messageId: string }> {
    try {
      const out = await this.#client.send(new SendMessageCommand({ QueueUrl: this.url, MessageBody: body }), { abortSignal: options.signal });
      return { messageId: out.MessageId ?? '' };
    } catch (err) {
      throw backendError(`send to ${this.name}`, err);
    }
  }

  async receive(options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    let out;
    try {
      out = await this.#client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.url,
          MaxNumberOfMessages: Math.min(Math.max(options.maxMessages ?? 1, 1), 10),
          WaitTimeSeconds: Math.min(Math.max(options.waitSeconds ?? 0, 0), MAX_WAIT_SECONDS),
          VisibilityTimeout: options.visibilityTimeoutSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        { abortSignal: options.signal },
      );
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw backendError(`receive from ${this.name}`, err);
    }
    return (out.Messages ?? []).map((m) => ({
      messageId: m.MessageId ?? '',
      body: m.Body ?? '',
      receipt: m.ReceiptHandle ?? '',
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    }));
  }

  async delete(receipt: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.#client.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receipt }), { abortSignal: options.signal });
    } catch (err) {
      const name = (err as { name?: string }).name ?? '';
      if (name === 'ReceiptHandleIsInvalid' || name === 'InvalidParameterValue') return;
      throw backendError(`delete from ${this.name}`, err);
    }
  }
}

export interface SqsQueueProviderOptions {
  readonly client: SQSClient;
  /** Prepended to every queue name, e.g. `tidemark-prod-`. Names are at most 80 characters. */
  readonly namePrefix: string;
  /** Receives after which a message is dead-lettered. @default 5 */
  readonly maxReceiveCount?: number;
  /** @default 30 */
  readonly visibilityTimeoutSeconds?: number;
  /** Tags put on every queue created. @default none */
  readonly tags?: Record<string, string>;
}

export class SqsQueueProvider implements QueueProvider {
  readonly #o: SqsQueueProviderOptions;
  readonly #queues = new Map<string, Promise<SqsQueue>>();

  constructor(options: SqsQueueProviderOptions) {
    this.#o = options;
  }

  async open(name: string): Promise<MessageQueue> {
    checkQueueName(name);
    return this.#cached(name, async () => {
      const dlq = await this.#cached(`${name}-dlq`, () => this.#create(`${name}-dlq`, {}));
      const arn = await this.#arnOf(dlq);
      return this.#create(name, {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: this.#o.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT }),
      });
    });
  }

  async deadLetters(name: string): Promise<MessageQueue> {
    checkQueueName(name);
    return this.#cached(`${name}-dlq`, () => this.#create(`${name}-dlq`, {}));
  }

  #cached(name: string, make: () => Promise<SqsQueue>): Promise<SqsQueue> {
    let q = this.#queues.get(name);
    if (!q) {
      q = make();
      this.#queues.set(name, q);
      q.catch(() => this.#queues.delete(name));
    }
    return q;
  }

  async #create(name: string, attributes: Record<string, string>): Promise<SqsQueue> {
    const fullName = this.#o.namePrefix + name;
    try {
      const out = await this.#o.client.send(
        new CreateQueueCommand({
          QueueName: fullName,
          Attributes: {
            VisibilityTimeout: String(this.#o.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS),
            SqsManagedSseEnabled: 'true',
            ...attributes,
          },
          tags: this.#o.tags,
        }),
      );
      return new SqsQueue(this.#o.client, out.QueueUrl!, name);
    } catch (err) {
      throw backendError(`create of queue ${fullName}`, err);
    }
  }

  async #arnOf(q: SqsQueue): Promise<string> {
    try {
      const out = await this.#o.client.send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['QueueArn'] }));
      return out.Attributes!.QueueArn!;
    } catch (err) {
      throw backendError(`lookup of queue ${q.name}`, err);
    }
  }
}

function backendError(what: string, err: unknown): BackendError {
  return new BackendError(`sqs ${what} failed`, { cause: err, hint: 'check the queue, its permissions and the network' });
}
