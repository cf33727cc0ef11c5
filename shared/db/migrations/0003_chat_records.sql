-- The audit trail of every chat turn: conversations, messages (with backend, model,
-- adapter, timings), the passages each answer saw, and user feedback. Every row belongs
-- to the principal who created it; RLS keeps each principal to their own rows.
CREATE TABLE conversations (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  domain      text NOT NULL,
  principal   text NOT NULL DEFAULT app_principal(),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_principal_idx ON conversations (principal, created_at);

CREATE TABLE messages (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  principal        text NOT NULL DEFAULT app_principal(),
  role             text NOT NULL CHECK (role IN ('user', 'assistant')),
  content          text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  retrieval_query  text,                       -- the (rewritten) query retrieval ran
  grounded         boolean,                    -- false: the refusal was given instead
  backend          text,
  model            text,
  adapter          text,
  timings          jsonb NOT NULL DEFAULT '{{}}',  -- retrieval_ms, prompt_ms, first_token_ms, total_ms
  usage            jsonb NOT NULL DEFAULT '{{}}',  -- prompt/completion tokens, passages kept/dropped
  error            text
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at);

CREATE TABLE message_sources (
  message_id  uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  principal   text NOT NULL DEFAULT app_principal(),
  rank        smallint NOT NULL,
  collection  text NOT NULL,
  node_id     text NOT NULL,
  doc_id      text NOT NULL,
  score       double precision,
  similarity  double precision,
  in_prompt   boolean NOT NULL,                 -- false: dropped to fit the context window
  cited       boolean NOT NULL,
  PRIMARY KEY (message_id, rank)
);

CREATE TABLE feedback (
  message_id  uuid PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  principal   text NOT NULL DEFAULT app_principal(),
  rating      smallint NOT NULL CHECK (rating IN (-1, 1)),
  comment     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversations_own ON conversations USING (principal = app_principal()) WITH CHECK (principal = app_principal());
CREATE POLICY messages_own ON messages USING (principal = app_principal()) WITH CHECK (principal = app_principal());
CREATE POLICY message_sources_own ON message_sources USING (principal = app_principal()) WITH CHECK (principal = app_principal());
CREATE POLICY feedback_own ON feedback USING (principal = app_principal()) WITH CHECK (principal = app_principal());
GRANT SELECT, INSERT, UPDATE, DELETE ON conversations, messages, message_sources, feedback TO {app_role};
