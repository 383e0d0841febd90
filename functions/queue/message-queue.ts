/**
 * The queue interface of the control plane: at-least-once delivery with a visibility
 * timeout, explicit acknowledgement (delete) and dead-lettering after too many receives.
 * Backends: `file-queue.ts` (embedded, durable on disk) and `sqs-queue.ts`. Both pass
 * `test/functions/support/queue-contract.ts`.
 */

/** A message as received: it stays invisible to other receivers until its timeout ends. */
export interface ReceivedMessage {
  readonly messageId: string;
  readonly body: string;
  /** Opaque handle that acknowledges (deletes) this delivery of the message. */
  readonly receipt: string;
  /** How many times the message has been received, this time included (1 the first time). */
  readonly receiveCount: number;
}

export interface ReceiveOptions {
  /** At most this many messages, 1-10. @default 1 */
  readonly maxMessages?: number;
  /** Long poll: wait up to this long for a first message, 0-20. @default 0 */
  readonly waitSeconds?: number;
  /** Received messages stay invisible this long unless deleted. @default the queue's */
  readonly visibilityTimeoutSeconds?: number;
  readonly signal?: AbortSignal;
}

export interface MessageQueue {
  /** The queue's name, as given to `QueueProvider.open`. */
  readonly name: string;
  /** Enqueues one message (a UTF-8 string of at most 256 KiB). */
  send(body: string, options?: { signal?: AbortSignal }): Promise<{ messageId: string }>;
  /**
   * Visible messages, oldest first where the backend keeps an order. A message received more
   * than the queue's `maxReceiveCount` times goes to the dead-letter queue instead.
   */
  receive(options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Acknowledges a delivery: the message is gone. An unknown receipt is ignored. */
  delete(receipt: string, options?: { signal?: AbortSignal }): Promise<void>;
}

/** Opens queues by name, creating each (with its dead-letter queue) on first use. */
export interface QueueProvider {
  open(name: string): Promise<MessageQueue>;
  /** The queue that collects what `name` dead-lettered. */
  deadLetters(name: string): Promise<MessageQueue>;
}

/** Largest message body accepted, in bytes (SQS's limit). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** Receives after which a message is dead-lettered, unless a provider is told otherwise. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;
/** Visibility timeout of a queue unless a receive says otherwise. */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
/** Longest long poll, in seconds (SQS's limit). */
export const MAX_WAIT_SECONDS = 20;

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,72}$/;

/** Throws a TypeError unless `name` is a valid queue name (also safe as a file name). */
export function checkQueueName(name: string): string {
  if (!QUEUE_NAME.test(name)) throw new TypeError(`invalid queue name ${JSON.stringify(name)}`);
  return name;
}
