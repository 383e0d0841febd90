/**
 * The per-site command queues are created by the control plane itself when a process server
 * or master target first polls (one queue and its dead-letter queue per server, named
 * `<prefix>site-<serverId>`), so they are not resources of this stack. This construct names
 * their prefix and grants functions the use of exactly the queues under it.
 */
import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface SiteCommandQueuesProps {
  /**
   * Prefix of every site queue name; queue names are at most 80 characters and the rest of
   * the name takes 33, so at most 47.
   * @default `${stackName}-`, shortened to 47 characters
   */
  readonly namePrefix?: string;
}

/** What a function does with site queues: create them (with redrive), send, receive, delete. */
const SITE_QUEUE_ACTIONS = [
  'sqs:CreateQueue', 'sqs:GetQueueUrl', 'sqs:GetQueueAttributes', 'sqs:SetQueueAttributes', 'sqs:TagQueue',
  'sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility',
];

export class SiteCommandQueues extends Construct {
  readonly namePrefix: string;
  /** ARN pattern of every site queue of this stack. */
  readonly arnPattern: string;

  constructor(scope: Construct, id: string, props: SiteCommandQueuesProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.namePrefix = props.namePrefix ?? `${stack.stackName.slice(0, 46)}-`;
    if (!/^[A-Za-z0-9_-]{1,47}$/.test(this.namePrefix)) {
      throw new Error(`site queue name prefix ${JSON.stringify(this.namePrefix)} must be 1-47 letters, digits, - or _`);
    }
    this.arnPattern = Arn.format({ service: 'sqs', resource: `${this.namePrefix}site-*`, arnFormat: ArnFormat.NO_RESOURCE_NAME }, stack);
  }

  /** Lets `grantee` create and use the site queues (and only those). */
  grantUse(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: SITE_QUEUE_ACTIONS, resources: [this.arnPattern] }));
  }
}
