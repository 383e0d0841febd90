/**
 * The control plane's CDK stack: template assertions and the AWS Solutions checks of cdk-nag,
 * on one synthesis shared by the whole file (function bundling by the local esbuild included).
 */
import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ControlPlaneStack } from '../../infra/control-plane-stack.ts';

let app: App;
let template: Template;
let synthMs: number;

before(() => {
  const started = Date.now();
  // The built-in CloudFormation validation (about 6 s here) runs in `npx cdk synth`, not in this test.
  app = new App({ builtinCloudFormationValidation: false });
  const stack = new ControlPlaneStack(app, 'TestControlPlane', {
    env: { account: '123456789012', region: 'eu-west-1' },
    adminTokenSha256: 'a'.repeat(64),
    minify: false,
  });
  template = Template.fromStack(stack);
  synthMs = Date.now() - started;
});

it('synthesises, bundling included, in under 30 seconds', () => {
  assert.ok(synthMs < 30_000, `synth took ${synthMs} ms`);
});

it('keeps state in a versioned, encrypted, private bucket that refuses plain HTTP', () => {
  template.resourceCountIs('AWS::S3::Bucket', 1);
  template.hasResourceProperties('AWS::S3::Bucket', {
    VersioningConfiguration: { Status: 'Enabled' },
    BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
    PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
  });
  template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
  });
});

it('runs three functions on nodejs22.x, bundled as ESM, configured through the environment', () => {
  const functions = template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } });
  assert.equal(Object.keys(functions).length, 3);
  for (const f of Object.values(functions) as { Properties: { Handler: string; Environment: { Variables: Record<string, unknown> } } }[]) {
    assert.equal(f.Properties.Handler, 'index.handler');
    const vars = f.Properties.Environment.Variables;
    for (const v of ['TIDEMARK_BUCKET', 'TIDEMARK_SITE_EVENTS_QUEUE_URL', 'TIDEMARK_SITE_QUEUE_PREFIX', 'TIDEMARK_ADMIN_TOKEN_SHA256']) assert.ok(v in vars, v);
  }
});

it('queues site reports in an encrypted queue with an encrypted dead-letter queue, consumed in batches', () => {
  template.resourceCountIs('AWS::SQS::Queue', 2);
  template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() } });
  template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] });
});

it('serves the API through an HTTP API with access logs and throttling', () => {
  template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: '$default', AutoDeploy: true,
    AccessLogSettings: { DestinationArn: Match.anyValue() },
    DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
  });
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' });
});

it('starts the scheduled pass every five minutes', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'rate(5 minutes)',
    Targets: [Match.objectLike({ Arn: Match.anyValue(), RetryPolicy: { MaximumRetryAttempts: 2 } })],
  });
});

it('grants site-queue use by name prefix only, and sending reports to the API only', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const statements = Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  const siteQueue = statements.filter((s: any) => [s.Action].flat().includes('sqs:CreateQueue'));
  assert.equal(siteQueue.length, 3);
  for (const s of siteQueue) assert.match(JSON.stringify(s.Resource), /:TestControlPlane-site-\*/);
  const senders = Object.entries(policies).filter(([, p]: [string, any]) =>
    p.Properties.PolicyDocument.Statement.some((s: any) => [s.Action].flat().includes('sqs:SendMessage') && !JSON.stringify(s.Resource).includes('site-*')));
  assert.equal(senders.length, 1);
  assert.match(senders[0]![0], /^ApiFunction/);
});

it('passes the AWS Solutions checks, with only the acknowledged findings', () => {
  const report = new AwsSolutionsChecks(app).validateScope(app);
  const found = report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.resourceLogicalId).join(',')}`);
  assert.deepEqual(found, []);
  assert.equal(report.success, true);
});
