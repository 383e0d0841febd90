import { replicationBench } from './replication.ts';

await replicationBench();
