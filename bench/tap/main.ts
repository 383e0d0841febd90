import { tapBench } from './run.ts';

await tapBench();
