-- Background training jobs: `assistants up` queues a domain's first adapter, a reviewer
-- queues a retraining on accepted feedback, and one runner trains them one at a time. A
-- job killed with its process stays 'running' here and is queued again (to resume from its
-- last checkpoint) by the next runner. The chat servers read a job's step and estimate for
-- their footer and /readyz.
CREATE TABLE training_jobs (
  id           bigserial PRIMARY KEY,
  domain       text NOT NULL,
  reason       text NOT NULL,
  status       text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  step         integer NOT NULL DEFAULT 0,
  total_steps  integer,
  eta_s        double precision,
  version      text,
  outcome      text,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
-- At most one unfinished job per domain: a second request joins the queued one.
CREATE UNIQUE INDEX training_jobs_one_pending ON training_jobs (domain) WHERE status IN ('queued', 'running');
CREATE INDEX training_jobs_queue_idx ON training_jobs (status, id);
-- Jobs hold no personal data; the servers only read them (progress in the footer).
GRANT SELECT ON training_jobs TO {app_role};
