-- Switchyard migration 0003: what organizations and cross-replica auth need.
--
-- "LiteLLM_OrganizationMembership" is LiteLLM's table (same columns, constraint names and
-- foreign keys as its Prisma schema), so a LiteLLM database that already has it is left as
-- it is. "switchyard_auth_changes" is ours: one counter per replica group that every key,
-- team, user or organization change increments; replicas without Redis poll it to drop
-- their auth caches (see docs/store.md).
CREATE TABLE IF NOT EXISTS "LiteLLM_OrganizationMembership" (
    "user_id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL,
    "user_role" TEXT,
    "spend" DOUBLE PRECISION DEFAULT 0.0,
    "budget_id" TEXT,
    "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "LiteLLM_OrganizationMembership_pkey" PRIMARY KEY ("user_id", "organization_id"),
    CONSTRAINT "LiteLLM_OrganizationMembership_user_id_fkey" FOREIGN KEY ("user_id")
        REFERENCES "LiteLLM_UserTable"("user_id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "LiteLLM_OrganizationMembership_organization_id_fkey" FOREIGN KEY ("organization_id")
        REFERENCES "LiteLLM_OrganizationTable"("organization_id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "LiteLLM_OrganizationMembership_budget_id_fkey" FOREIGN KEY ("budget_id")
        REFERENCES "LiteLLM_BudgetTable"("budget_id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS "LiteLLM_OrganizationMembership_user_id_organization_id_key" ON "LiteLLM_OrganizationMembership"("user_id", "organization_id");

CREATE TABLE IF NOT EXISTS "switchyard_auth_changes" (
    "name" TEXT NOT NULL,
    "version" BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT "switchyard_auth_changes_pkey" PRIMARY KEY ("name")
);
INSERT INTO "switchyard_auth_changes" ("name", "version") VALUES ('auth', 0) ON CONFLICT ("name") DO NOTHING;
