-- Benchmark runs and their per-item results, kept so runs can be compared over time
-- (`assistants eval history DOMAIN`). Items are dataset questions, never user data, so
-- these tables are shared by all principals of the application role.
CREATE TABLE eval_runs (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  domain       text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  config       jsonb NOT NULL DEFAULT '{{}}',   -- modes, limit, data files, models and adapter
  scores       jsonb NOT NULL DEFAULT '{{}}'    -- benchmark -> mode -> metric -> value
);
CREATE INDEX eval_runs_domain_idx ON eval_runs (domain, started_at);

CREATE TABLE eval_items (
  run_id     uuid NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
  benchmark  text NOT NULL,
  mode       text NOT NULL,
  item_id    text NOT NULL,
  result     jsonb NOT NULL,
  PRIMARY KEY (run_id, benchmark, mode, item_id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON eval_runs, eval_items TO {app_role};
