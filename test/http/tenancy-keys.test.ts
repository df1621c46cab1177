// The tenant-isolation matrix with API keys, as in production.
import { tenancyMatrix } from './tenancy.ts';

await tenancyMatrix('keys');
