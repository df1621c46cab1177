-- Every POST of a tenant is idempotent: an answer is replayed with its headers, and its status
-- may be the operation's usual one (NULL). Location is derived from the body when replayed.
ALTER TABLE "idempotency_keys"
    ADD COLUMN "headers" TEXT NOT NULL DEFAULT '{}',
    ALTER COLUMN "status" DROP NOT NULL,
    DROP COLUMN "location";
