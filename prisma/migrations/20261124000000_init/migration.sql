-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "citext";

-- CreateEnum
CREATE TYPE "auth_type" AS ENUM ('none', 'apiKey', 'bearer', 'basic', 'oauth2');

-- CreateEnum
CREATE TYPE "http_method" AS ENUM ('GET', 'POST', 'PUT', 'PATCH', 'DELETE');

-- CreateEnum
CREATE TYPE "execution_status" AS ENUM ('queued', 'running', 'completed', 'failed', 'skipped', 'cancelled');

-- CreateTable
CREATE TABLE "organizations" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "organizations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "email" CITEXT NOT NULL,
    "name" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tools" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "base_url" TEXT NOT NULL,
    "auth_type" "auth_type" NOT NULL DEFAULT 'none',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "tools_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "actions" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "tool_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "description" TEXT,
    "method" "http_method" NOT NULL,
    "endpoint" TEXT NOT NULL,
    "headers" JSON NOT NULL DEFAULT '{}',
    "input_schema" JSON NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "actions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "flows" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "flows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "flow_steps" (
    "flow_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "org_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "action_id" UUID NOT NULL,
    "inputs" JSON NOT NULL DEFAULT '{}',

    CONSTRAINT "flow_steps_pkey" PRIMARY KEY ("flow_id","position")
);

-- CreateTable
CREATE TABLE "execution_logs" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "flow_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "execution_id" TEXT NOT NULL,
    "step_key" TEXT NOT NULL,
    "status" "execution_status" NOT NULL,
    "inputs" JSON NOT NULL DEFAULT '{}',
    "outputs" JSON,
    "error" JSON,
    "duration_ms" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "execution_logs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_org_id_id_key" ON "users"("org_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "users_org_id_email_key" ON "users"("org_id", "email");

-- CreateIndex
CREATE UNIQUE INDEX "tools_org_id_id_key" ON "tools"("org_id", "id");

-- CreateIndex
CREATE INDEX "actions_org_id_tool_id_idx" ON "actions"("org_id", "tool_id");

-- CreateIndex
CREATE UNIQUE INDEX "actions_org_id_id_key" ON "actions"("org_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "actions_org_id_key_key" ON "actions"("org_id", "key");

-- CreateIndex
CREATE UNIQUE INDEX "flows_org_id_id_key" ON "flows"("org_id", "id");

-- CreateIndex
CREATE INDEX "flow_steps_org_id_action_id_idx" ON "flow_steps"("org_id", "action_id");

-- CreateIndex
CREATE UNIQUE INDEX "flow_steps_flow_id_key_key" ON "flow_steps"("flow_id", "key");

-- CreateIndex
CREATE INDEX "execution_logs_org_id_id_idx" ON "execution_logs"("org_id", "id");

-- CreateIndex
CREATE INDEX "execution_logs_org_id_flow_id_id_idx" ON "execution_logs"("org_id", "flow_id", "id");

-- CreateIndex
CREATE INDEX "execution_logs_org_id_execution_id_id_idx" ON "execution_logs"("org_id", "execution_id", "id");

-- CreateIndex
CREATE INDEX "execution_logs_org_id_user_id_idx" ON "execution_logs"("org_id", "user_id");

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tools" ADD CONSTRAINT "tools_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "actions" ADD CONSTRAINT "actions_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "actions" ADD CONSTRAINT "actions_org_id_tool_id_fkey" FOREIGN KEY ("org_id", "tool_id") REFERENCES "tools"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flows" ADD CONSTRAINT "flows_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flow_steps" ADD CONSTRAINT "flow_steps_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flow_steps" ADD CONSTRAINT "flow_steps_org_id_flow_id_fkey" FOREIGN KEY ("org_id", "flow_id") REFERENCES "flows"("org_id", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flow_steps" ADD CONSTRAINT "flow_steps_org_id_action_id_fkey" FOREIGN KEY ("org_id", "action_id") REFERENCES "actions"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_org_id_flow_id_fkey" FOREIGN KEY ("org_id", "flow_id") REFERENCES "flows"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_org_id_user_id_fkey" FOREIGN KEY ("org_id", "user_id") REFERENCES "users"("org_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE;
