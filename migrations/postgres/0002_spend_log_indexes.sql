-- Switchyard migration 0002: indexes for the spend-log queries the store runs (by key, by
-- key owner, by team, each newest first within a time range). Names follow Prisma's
-- convention so that if LiteLLM declares the same index it is recognised as the same one.
-- On a large existing table the first run builds them while holding a write lock on
-- "LiteLLM_SpendLogs"; see docs/store.md for building them CONCURRENTLY beforehand.
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_api_key_startTime_idx" ON "LiteLLM_SpendLogs"("api_key", "startTime");
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_user_startTime_idx" ON "LiteLLM_SpendLogs"("user", "startTime");
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_team_id_startTime_idx" ON "LiteLLM_SpendLogs"("team_id", "startTime");
