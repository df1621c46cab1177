import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient, type Prisma } from '../generated/prisma/client.ts';
import { connectionConfig } from './connection.ts';

export type Database = PrismaClient;

/** A JSON object from a request, as Prisma's input type for a JSON column. */
export function jsonColumn(value: Record<string, unknown>): Prisma.InputJsonObject {
  return value as Prisma.InputJsonObject;
}

export function createDatabase(url: string, poolSize = 10): Database {
  return new PrismaClient({ adapter: new PrismaPg({ ...connectionConfig(url), max: poolSize }) });
}
