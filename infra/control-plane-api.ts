/**
 * The public face of the control plane: an API Gateway HTTP API whose default route sends
 * every request to the API function, with access logs. Authentication is the app's own
 * (operator tokens, site credentials); API Gateway only forwards.
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { HttpApi, HttpStage, LogGroupLogDestination, type ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface ControlPlaneApiProps {
  /** The function running `functions/lambda/api.ts`. */
  readonly handler: IFunction;
  /**
   * Request rate limits of the stage.
   * @default 50 requests per second, bursts of 100
   */
  readonly throttle?: ThrottleSettings;
  /** @default RetentionDays.ONE_MONTH */
  readonly accessLogRetention?: RetentionDays;
}

export class ControlPlaneApi extends Construct {
  readonly httpApi: HttpApi;
  /** Base URL of the API (append `/api/v1`). */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ControlPlaneApiProps) {
    super(scope, id);
    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Tidemark control plane',
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('Api', props.handler),
    });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: AccessLogFormat.jsonWithStandardFields() },
    });
    this.url = stage.url;
    Validations.of(this.httpApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'every endpoint but enrollment (which takes a registration key in its body) and health authenticates its bearer ' +
        'token in the app: operator tokens with roles, per-component site credentials; tokens are stored as hashes in the state bucket',
    });
  }
}
