/**
 * One control-plane Lambda function: `NodejsFunction` bundled by the local esbuild (ESM,
 * minified, with source maps) from an entry in `functions/lambda/`, with its own log group.
 * Folders the code reads at run time (the console's static files) are copied into the bundle
 * after esbuild, next to `index.mjs`.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { isAbsolute, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where package-lock.json and functions/ are. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ControlPlaneFunctionProps {
  /** Entry file, relative to the repository root, e.g. `functions/lambda/api.ts`. */
  readonly entry: string;
  /** Environment of the function (see functions/config.ts). */
  readonly environment: Record<string, string>;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default Runtime.NODEJS_22_X */
  readonly runtime?: Runtime;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Minify the bundle. Tests turn it off to synthesise faster.
   * @default true
   */
  readonly minify?: boolean;
  /**
   * Folders copied into the bundle after esbuild: repository-relative source → path inside the
   * bundle (relative to `index.mjs`). A missing source fails the synthesis.
   * @default none
   */
  readonly bundleFolders?: Readonly<Record<string, string>>;
}

/** A path safe to put between single quotes in the shell that runs the bundling hooks. */
function shellQuote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

/** `cp -R` of each folder into esbuild's output; local bundling runs these through bash. */
function copyFolders(folders: Readonly<Record<string, string>>, inputDir: string, outputDir: string): string[] {
  return Object.entries(folders).map(([from, to]) => {
    if (isAbsolute(from) || isAbsolute(to) || [from, to].some((p) => p.split(/[\\/]/).includes('..'))) {
      throw new Error(`bundle folder ${from} → ${to}: both paths must be relative and stay inside their roots`);
    }
    const target = posix.join(outputDir, to);
    return `mkdir -p ${shellQuote(posix.dirname(target))} && cp -R ${shellQuote(posix.join(inputDir, from))} ${shellQuote(target)}`;
  });
}

export class ControlPlaneFunction extends Construct {
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: ControlPlaneFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const runtime = props.runtime ?? Runtime.NODEJS_22_X;
    this.fn = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, props.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: {
        format: OutputFormat.ESM,
        target: `node${runtime.name.replace(/\D/g, '')}`,
        minify: props.minify ?? true,
        sourceMap: true,
        forceDockerBundling: false,
        mainFields: ['module', 'main'],
        // ESM bundles of CommonJS dependencies still call require().
        banner: "import { createRequire as __tmCreateRequire } from 'node:module'; const require = __tmCreateRequire(import.meta.url);",
        ...(props.bundleFolders && Object.keys(props.bundleFolders).length > 0
          ? {
            commandHooks: {
              beforeBundling: () => [],
              beforeInstall: () => [],
              afterBundling: (inputDir: string, outputDir: string) => copyFolders(props.bundleFolders!, inputDir, outputDir),
            },
          }
          : {}),
      },
    });
    if (runtime === Runtime.NODEJS_22_X) {
      Validations.of(this.fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'pinned to nodejs22.x, the Node line the project tests and bundles for; the runtime is a prop to move when the project does',
      });
    }
    Validations.of(this.fn).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole only lets the function write its own logs',
    });
  }
}
