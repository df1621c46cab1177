-- Authentication: members get a role, and API keys.

-- CreateEnum
CREATE TYPE "member_role" AS ENUM ('owner', 'member');

-- AlterTable
ALTER TABLE "users" ADD COLUMN "role" "member_role" NOT NULL DEFAULT 'member';

-- The creator of each organization (its first member: ids grow with time) becomes its owner.
UPDATE "users" SET "role" = 'owner'
WHERE "id" IN (SELECT DISTINCT ON ("org_id") "id" FROM "users" ORDER BY "org_id", "id");

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "lookup" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_lookup_key" ON "api_keys"("lookup");

-- CreateIndex
CREATE INDEX "api_keys_org_id_user_id_id_idx" ON "api_keys"("org_id", "user_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_org_id_id_key" ON "api_keys"("org_id", "id");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_org_id_user_id_fkey" FOREIGN KEY ("org_id", "user_id") REFERENCES "users"("org_id", "id") ON DELETE CASCADE ON UPDATE CASCADE;
