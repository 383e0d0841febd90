/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy`). Context:
 *   tidemark:stackName        stack name (default TidemarkControlPlane)
 *   tidemark:adminTokenSha256 hex sha256 of the bootstrap admin token (optional)
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ControlPlaneStack } from './control-plane-stack.ts';

const app = new App();
const stackName = (app.node.tryGetContext('tidemark:stackName') as string | undefined) ?? 'TidemarkControlPlane';
new ControlPlaneStack(app, stackName, {
  adminTokenSha256: app.node.tryGetContext('tidemark:adminTokenSha256') as string | undefined,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
