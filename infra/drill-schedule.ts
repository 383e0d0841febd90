/**
 * The schedule that starts the scheduled pass (`functions/lambda/drill-runner.ts`): drills
 * that are due, job deadlines and stale-report alerts.
 */
import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface DrillScheduleProps {
  readonly handler: IFunction;
  /**
   * How often the pass runs; a drill starts at most this late.
   * @default Duration.minutes(5)
   */
  readonly interval?: Duration;
}

export class DrillSchedule extends Construct {
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: DrillScheduleProps) {
    super(scope, id);
    this.rule = new Rule(this, 'Rule', {
      description: 'Tidemark scheduled pass: drills, job deadlines, stale reports',
      schedule: Schedule.rate(props.interval ?? Duration.minutes(5)),
    });
    this.rule.addTarget(new LambdaFunction(props.handler, { retryAttempts: 2 }));
  }
}
