// The shape of a PostgreSQL schema (tables, columns, keys, indexes, foreign keys, enums,
// extensions), described two ways: as schema.prisma says it must be, following Prisma's own
// naming and type mapping, and as the database really is. The drift test compares the two.
import { getDMMF } from '@prisma/get-dmmf';
import type pg from 'pg';

export interface Shape {
  extensions: string[];
  enums: Record<string, string[]>;
  tables: Record<string, Table>;
}

interface Table {
  columns: Record<string, { type: string; nullable: boolean; default: string | null }>;
  indexes: Record<string, { primary: boolean; unique: boolean; columns: string[] }>;
  foreignKeys: Record<string, { columns: string[]; references: string; referencedColumns: string[]; onDelete: string; onUpdate: string }>;
}

const ACTIONS: Record<string, string> = { a: 'NoAction', r: 'Restrict', c: 'Cascade', n: 'SetNull', d: 'SetDefault' };

export async function expectedShape(schema: string): Promise<Shape> {
  const { datamodel } = (await getDMMF({ datamodel: schema })) as any;
  const extensions = [...schema.matchAll(/extensions\s*=\s*\[([^\]]*)\]/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean),
  );
  const enumNames = new Map<string, string>(datamodel.enums.map((e: any) => [e.name, e.dbName ?? e.name]));
  const models = new Map<string, any>(datamodel.models.map((m: any) => [m.name, m]));
  const tableOf = (model: string) => models.get(model).dbName ?? model;
  const columnOf = (model: string, field: string) => {
    const found = models.get(model).fields.find((f: any) => f.name === field);
    return found.dbName ?? found.name;
  };
  const tables: Record<string, Table> = {};
  for (const model of datamodel.models) {
    const table = tableOf(model.name);
    const columns: Table['columns'] = {};
    for (const field of model.fields.filter((f: any) => f.kind !== 'object')) {
      const type = field.kind === 'enum' ? enumNames.get(field.type)! : columnType(field.type, field.nativeType) + (field.isList ? '[]' : '');
      columns[field.dbName ?? field.name] = { type, nullable: !field.isRequired, default: columnDefault(field, type, table) };
    }
    const indexes: Table['indexes'] = {};
    for (const index of datamodel.indexes.filter((i: any) => i.model === model.name)) {
      const names = index.fields.map((f: any) => columnOf(model.name, f.name));
      const suffix = { id: 'pkey', unique: 'key', normal: 'idx' }[index.type as string];
      const name = index.dbName ?? (index.type === 'id' ? `${table}_pkey` : `${table}_${names.join('_')}_${suffix}`);
      indexes[name] = { primary: index.type === 'id', unique: index.type !== 'normal', columns: names };
    }
    const foreignKeys: Table['foreignKeys'] = {};
    for (const relation of model.fields.filter((f: any) => f.kind === 'object' && f.relationFromFields?.length)) {
      const from = relation.relationFromFields.map((f: string) => columnOf(model.name, f));
      foreignKeys[`${table}_${from.join('_')}_fkey`] = {
        columns: from,
        references: tableOf(relation.type),
        referencedColumns: relation.relationToFields.map((f: string) => columnOf(relation.type, f)),
        onDelete: relation.relationOnDelete ?? (relation.isRequired ? 'Restrict' : 'SetNull'),
        onUpdate: relation.relationOnUpdate ?? 'Cascade',
      };
    }
    tables[table] = { columns, indexes, foreignKeys };
  }
  const enums = Object.fromEntries(datamodel.enums.map((e: any) => [e.dbName ?? e.name, e.values.map((v: any) => v.dbName ?? v.name)]));
  return { extensions: extensions.sort(), enums, tables };
}

// Prisma's mapping of scalar types (and the native types this project uses) to PostgreSQL.
function columnType(type: string, nativeType: [string, string[]] | null): string {
  const [native, args] = nativeType ?? [undefined, []];
  if (type === 'String') return native === 'Uuid' ? 'uuid' : native === 'Citext' ? 'citext' : 'text';
  if (type === 'Int') return 'integer';
  if (type === 'BigInt') return 'bigint';
  if (type === 'Boolean') return 'boolean';
  if (type === 'Float') return 'double precision';
  if (type === 'Json') return native === 'Json' ? 'json' : 'jsonb';
  if (type === 'DateTime') return `timestamp(${args[0] ?? 3}) ${native === 'Timestamptz' ? 'with' : 'without'} time zone`;
  throw new Error(`the drift test does not know how Prisma maps ${type} ${native ?? ''}; teach it`);
}

// Defaults the database holds; uuid() and @updatedAt are filled in by Prisma Client instead.
function columnDefault(field: any, type: string, table: string): string | null {
  const value = field.default;
  if (value === undefined || field.isUpdatedAt) return null;
  if (typeof value === 'object' && !Array.isArray(value)) {
    if (value.name === 'now') return 'CURRENT_TIMESTAMP';
    if (value.name === 'uuid' || value.name === 'cuid') return null;
    if (value.name === 'autoincrement') return `nextval('${table}_${field.dbName ?? field.name}_seq'::regclass)`;
    throw new Error(`the drift test does not know the default ${value.name}(); teach it`);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `'${value}'::${type}`;
}

export async function actualShape(client: pg.Client): Promise<Shape> {
  const query = async (sql: string) => (await client.query(sql)).rows;
  const extensions = (await query("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname")).map((r) => r.extname);
  const enums: Shape['enums'] = {};
  for (const row of await query(
    "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' ORDER BY t.typname, e.enumsortorder",
  )) {
    enums[row.typname] = [...(enums[row.typname] ?? []), row.enumlabel];
  }
  const tables: Record<string, Table> = {};
  const tableNames = await query(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'",
  );
  for (const { relname } of tableNames) tables[relname] = { columns: {}, indexes: {}, foreignKeys: {} };
  const columns = await query(`
    SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`);
  for (const row of columns) {
    const table = tables[row.table];
    if (table) table.columns[row.column] = { type: row.type, nullable: row.nullable, default: row.default };
  }
  const indexes = await query(`
    SELECT t.relname AS table, i.relname AS name, x.indisprimary AS primary, x.indisunique AS unique,
           array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public'`);
  for (const row of indexes) if (tables[row.table]) tables[row.table]!.indexes[row.name] = { primary: row.primary, unique: row.unique, columns: row.columns };
  const foreignKeys = await query(`
    SELECT c.conname AS name, t.relname AS table, r.relname AS references, c.confdeltype, c.confupdtype,
           array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
           array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS referenced
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE c.contype = 'f' AND n.nspname = 'public'`);
  for (const row of foreignKeys) {
    tables[row.table]!.foreignKeys[row.name] = {
      columns: row.columns,
      references: row.references,
      referencedColumns: row.referenced,
      onDelete: ACTIONS[row.confdeltype]!,
      onUpdate: ACTIONS[row.confupdtype]!,
    };
  }
  return { extensions, enums, tables };
}
