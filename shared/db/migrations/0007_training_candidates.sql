-- Candidate training examples from the chat UIs: answers their users liked and corrections
-- they wrote. A reviewer accepts (possibly editing the answer) or rejects each; accepted ones
-- are read from here whenever a domain's adapter is trained, so an erasure removes them from
-- every later run, and the adapter versions each one went into are kept with it. The
-- conversation, sources, model and adapter come with the message it answers.
CREATE TABLE training_candidates (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  domain           text NOT NULL,
  principal        text NOT NULL DEFAULT app_principal(),
  message_id       uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  kind             text NOT NULL CHECK (kind IN ('liked', 'corrected')),
  question         text NOT NULL,
  answer           text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
  reviewed_answer  text,
  reviewer         text,
  reviewed_at      timestamptz,
  trained_in       text[] NOT NULL DEFAULT '{{}}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (message_id, kind)
);
CREATE INDEX training_candidates_review_idx ON training_candidates (domain, status, created_at);

ALTER TABLE training_candidates ENABLE ROW LEVEL SECURITY;
CREATE POLICY training_candidates_own ON training_candidates
  USING (principal = app_principal()) WITH CHECK (principal = app_principal());
-- Users propose and withdraw their own; reviewing and training run as the owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON training_candidates TO {app_role};
