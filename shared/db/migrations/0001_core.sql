-- Core schema: collections, documents and their chunks, with row-level security.
-- Placeholders in braces are filled by shared/db/migrate.py with quoted identifiers/literals.
CREATE EXTENSION IF NOT EXISTS vector;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {app_role_name}) THEN
    -- The application's role: it can log in (embedded mode) but never bypass RLS.
    CREATE ROLE {app_role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

-- The principal of the current transaction (SET LOCAL app.principal); NULL = system context.
CREATE FUNCTION app_principal() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $fn$ SELECT nullif(current_setting('app.principal', true), '') $fn$;

CREATE TABLE collections (
  name        text PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
  collection    text NOT NULL REFERENCES collections(name),
  doc_id        text NOT NULL,
  owner         text,                        -- NULL = public
  source        text,                        -- absolute path (or importer URI) it came from
  title         text,
  content_hash  text NOT NULL,
  metadata      jsonb NOT NULL DEFAULT '{{}}',
  valid_from    date,
  valid_to      date,
  n_chunks      integer NOT NULL,
  ingested_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection, doc_id)
);
CREATE INDEX documents_source_idx ON documents (collection, source);

-- One partition per collection (created by Database.ensure_collection), so each domain
-- gets its own HNSW graph and GIN index while policies and migrations stay in one place.
CREATE TABLE chunks (
  collection  text NOT NULL,
  node_id     text NOT NULL,
  doc_id      text NOT NULL,
  owner       text,
  text        text NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{{}}',
  valid_from  date,
  valid_to    date,
  embedding   vector({dim}) NOT NULL,
  tsv         tsvector GENERATED ALWAYS AS (to_tsvector({ts_config}, text)) STORED,
  -- collection last in every btree: an index led by the (constant per partition)
  -- collection would tempt the planner away from HNSW for ORDER BY distance LIMIT k.
  PRIMARY KEY (node_id, collection)
) PARTITION BY LIST (collection);
-- In-row vectors: out-of-line (TOASTed) 384-d vectors make exact scans ~4x slower.
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX chunks_doc_idx ON chunks (doc_id);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
-- The HNSW index is per partition (Database.ensure_collection), not on the parent, so a
-- bulk load can drop and rebuild one collection's graph without touching the others.

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
-- Read: public rows and the principal's own. Write: only rows owned by the principal
-- (or public rows from the system context, i.e. the curated corpora).
CREATE POLICY documents_read ON documents FOR SELECT USING (owner IS NULL OR owner = app_principal());
CREATE POLICY documents_insert ON documents FOR INSERT WITH CHECK (owner IS NOT DISTINCT FROM app_principal());
CREATE POLICY documents_update ON documents FOR UPDATE
  USING (owner IS NOT DISTINCT FROM app_principal()) WITH CHECK (owner IS NOT DISTINCT FROM app_principal());
CREATE POLICY documents_delete ON documents FOR DELETE USING (owner IS NOT DISTINCT FROM app_principal());
CREATE POLICY chunks_read ON chunks FOR SELECT USING (owner IS NULL OR owner = app_principal());
CREATE POLICY chunks_insert ON chunks FOR INSERT WITH CHECK (owner IS NOT DISTINCT FROM app_principal());
CREATE POLICY chunks_delete ON chunks FOR DELETE USING (owner IS NOT DISTINCT FROM app_principal());

GRANT SELECT ON collections TO {app_role};
GRANT SELECT, INSERT, UPDATE, DELETE ON documents, chunks TO {app_role};
GRANT EXECUTE ON FUNCTION app_principal() TO {app_role};
