/**
 * The control plane on AWS: state bucket, site-events queue, the three functions (API, with
 * the console's files in its bundle; site-events consumer; scheduled pass), the HTTP API and
 * the schedule. Permissions are grants; the site queues' grant is by name prefix (see
 * site-command-queues.ts).
 */
import { CfnOutput, Duration, Stack, Token, Validations, type CfnResource, type StackProps } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Construct } from 'constructs';
import { ENV } from '../functions/config.ts';
import { ControlPlaneApi } from './control-plane-api.ts';
import { ControlPlaneFunction } from './control-plane-function.ts';
import { DrillSchedule } from './drill-schedule.ts';
import { SiteCommandQueues } from './site-command-queues.ts';
import { SiteEventsQueue } from './site-events-queue.ts';
import { StateBucket } from './state-bucket.ts';

/**
 * The console's static files, copied into the API function's bundle as `static/` next to
 * `index.mjs`: `functions/console/console-routes.ts` looks for them in `./static/` relative to
 * its own module, which in the bundle is `index.mjs`.
 */
export const CONSOLE_BUNDLE_FOLDERS: Readonly<Record<string, string>> = { 'functions/console/static': 'static' };

export interface ControlPlaneStackProps extends StackProps {
  /**
   * Hex sha256 of a bootstrap admin token (`printf %s "$TOKEN" | sha256sum`), with which the
   * first operator creates vaults and operator tokens.
   * @default none: no operator can sign in until one is set
   */
  readonly adminTokenSha256?: string;
  /** @default Duration.minutes(5) */
  readonly scheduleInterval?: Duration;
  /** @default `${stackName}-` */
  readonly siteQueueNamePrefix?: string;
  /** Receives before a site command or report dead-letters. @default 5 */
  readonly maxReceiveCount?: number;
  /**
   * Minify function bundles; tests turn it off to synthesise faster.
   * @default true
   */
  readonly minify?: boolean;
}

export class ControlPlaneStack extends Stack {
  constructor(scope: Construct, id: string, props: ControlPlaneStackProps = {}) {
    super(scope, id, props);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const state = new StateBucket(this, 'State');
    const siteEvents = new SiteEventsQueue(this, 'SiteEvents', { maxReceiveCount });
    const siteQueues = new SiteCommandQueues(this, 'SiteCommands', { namePrefix: props.siteQueueNamePrefix });

    const environment: Record<string, string> = {
      [ENV.bucket]: state.bucket.bucketName,
      [ENV.siteEventsQueueUrl]: siteEvents.queue.queueUrl,
      [ENV.siteQueuePrefix]: siteQueues.namePrefix,
      [ENV.maxReceiveCount]: String(maxReceiveCount),
      ...(props.adminTokenSha256 ? { [ENV.adminTokenSha256]: props.adminTokenSha256 } : {}),
    };
    const common = { environment, minify: props.minify };
    const api = new ControlPlaneFunction(this, 'ApiFunction', {
      ...common, entry: 'functions/lambda/api.ts', timeout: Duration.seconds(29), bundleFolders: CONSOLE_BUNDLE_FOLDERS,
    });
    const consumer = new ControlPlaneFunction(this, 'SiteEventsFunction', { ...common, entry: 'functions/lambda/site-events.ts' });
    const runner = new ControlPlaneFunction(this, 'DrillRunnerFunction', { ...common, entry: 'functions/lambda/drill-runner.ts', timeout: Duration.minutes(5) });

    for (const f of [api, consumer, runner]) {
      state.bucket.grantReadWrite(f.fn);
      siteQueues.grantUse(f.fn);
      acknowledgeGrantWildcards(f.fn, state, siteQueues);
    }
    siteEvents.queue.grantSendMessages(api.fn);
    consumer.fn.addEventSource(new SqsEventSource(siteEvents.queue, { batchSize: 10, reportBatchItemFailures: true }));

    const http = new ControlPlaneApi(this, 'Api', { handler: api.fn });
    new DrillSchedule(this, 'Schedule', { handler: runner.fn, interval: props.scheduleInterval });

    new CfnOutput(this, 'ApiUrl', { value: http.url, description: 'control plane URL (the API is under /api/v1)' });
    new CfnOutput(this, 'StateBucketName', { value: state.bucket.bucketName });
  }
}

/**
 * The wildcards cdk-nag finds in these grants, each acknowledged by name: `grantReadWrite` on
 * the state bucket gives object actions (`s3:GetObject*`, ...) on `bucket/*`, and site queues
 * are matched by their name prefix because the control plane creates one per enrolled server.
 */
function acknowledgeGrantWildcards(fn: IConstruct, state: StateBucket, queues: SiteCommandQueues): void {
  const stack = Stack.of(fn);
  const bucketId = stack.getLogicalId(state.bucket.node.defaultChild as CfnResource);
  const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
  const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
  const reasons: Record<string, string> = {
    'Action::s3:GetObject*': 'read records of the state bucket (grantReadWrite)',
    'Action::s3:GetBucket*': 'read the state bucket\'s settings (grantReadWrite)',
    'Action::s3:List*': 'list records of the state bucket (grantReadWrite)',
    'Action::s3:DeleteObject*': 'delete records of the state bucket (grantReadWrite)',
    'Action::s3:Abort*': 'abort uploads to the state bucket (grantReadWrite)',
    [`Resource::<${bucketId}.Arn>/*`]: 'the records are the objects of the state bucket, which only this stack uses',
    [`Resource::arn:<AWS::Partition>:sqs:${region}:${account}:${queues.namePrefix}site-*`]:
      'site command queues are created by the control plane per enrolled server, under this stack\'s name prefix',
  };
  for (const [finding, reason] of Object.entries(reasons)) {
    Validations.of(fn).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
  }
}
