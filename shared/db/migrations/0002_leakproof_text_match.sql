-- Under row-level security, a query condition whose function is not LEAKPROOF is
-- evaluated after the policy and can never be an index condition: every full-text
-- query would scan the whole collection instead of using the GIN index. tsvector @@
-- tsquery raises no data-dependent errors, so declaring it leakproof reveals nothing.
-- Only a superuser may do this; on a managed server without one, text search still
-- works, by scan (the start-up log says so).
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
  END IF;
END
$$;
