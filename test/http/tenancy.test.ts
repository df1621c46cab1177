// The tenant-isolation matrix with tenant headers, as in development.
import { tenancyMatrix } from './tenancy.ts';

await tenancyMatrix('headers');
