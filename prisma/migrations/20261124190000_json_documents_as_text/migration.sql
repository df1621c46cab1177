-- JSON documents become their JSON text (see schema.prisma).

-- AlterTable
ALTER TABLE "actions" ALTER COLUMN "headers" DROP DEFAULT;
ALTER TABLE "actions" ALTER COLUMN "headers" SET DATA TYPE TEXT USING "headers"::text;
ALTER TABLE "actions" ALTER COLUMN "headers" SET DEFAULT '{}';
ALTER TABLE "actions" ALTER COLUMN "input_schema" DROP DEFAULT;
ALTER TABLE "actions" ALTER COLUMN "input_schema" SET DATA TYPE TEXT USING "input_schema"::text;
ALTER TABLE "actions" ALTER COLUMN "input_schema" SET DEFAULT '{}';

-- AlterTable
ALTER TABLE "execution_logs" ALTER COLUMN "inputs" DROP DEFAULT;
ALTER TABLE "execution_logs" ALTER COLUMN "inputs" SET DATA TYPE TEXT USING "inputs"::text;
ALTER TABLE "execution_logs" ALTER COLUMN "inputs" SET DEFAULT '{}';
ALTER TABLE "execution_logs" ALTER COLUMN "outputs" SET DATA TYPE TEXT USING "outputs"::text;
ALTER TABLE "execution_logs" ALTER COLUMN "error" SET DATA TYPE TEXT USING "error"::text;

-- AlterTable
ALTER TABLE "flow_steps" ALTER COLUMN "inputs" DROP DEFAULT;
ALTER TABLE "flow_steps" ALTER COLUMN "inputs" SET DATA TYPE TEXT USING "inputs"::text;
ALTER TABLE "flow_steps" ALTER COLUMN "inputs" SET DEFAULT '{}';
