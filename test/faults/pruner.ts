// A process that runs retention's job function on the database at argv[2], as a worker's
// `maintenance.retention` job does, in small batches (so that a test can kill it half-way).
import { createDatabase } from '../../src/db/client.ts';
import { pruneExpired } from '../../src/engine/runs/retention.ts';

const db = createDatabase(process.argv[2]!);
const pruned = await pruneExpired(db, { batch: 20, pauseMs: 5 });
console.log(JSON.stringify(pruned));
await db.$disconnect();
