-- Switchyard migration 0002 (embedded SQLite): the spend-log indexes of
-- migrations/postgres/0002_spend_log_indexes.sql (by key, key owner and team, each with
-- "startTime" for newest-first range scans).
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_api_key_startTime_idx" ON "LiteLLM_SpendLogs"("api_key", "startTime");
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_user_startTime_idx" ON "LiteLLM_SpendLogs"("user", "startTime");
CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_team_id_startTime_idx" ON "LiteLLM_SpendLogs"("team_id", "startTime");
