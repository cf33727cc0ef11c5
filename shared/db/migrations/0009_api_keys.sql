-- Keys of the OpenAI-compatible API (/v1). A key stands for its principal, so row-level
-- security binds an API client exactly as it binds that user signed in to the UI. Only a
-- SHA-256 of each key is stored (keys are 32 random bytes: a fast hash is enough, nothing
-- to guess); `prefix` (the key's first characters) names it in listings. The application
-- role reaches the table only through api_key_principal(), which answers for one live key.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key_hash    text NOT NULL UNIQUE,
  prefix      text NOT NULL,
  principal   text NOT NULL CHECK (principal <> ''),
  domain      text,                                -- NULL: every domain
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,                         -- NULL: never
  revoked_at  timestamptz,
  last_used   timestamptz
);
CREATE INDEX api_keys_principal_idx ON api_keys (principal);

CREATE FUNCTION api_key_principal(hash text, dom text) RETURNS text
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$
    UPDATE api_keys SET last_used = now()
     WHERE key_hash = hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       AND (domain IS NULL OR domain = dom)
    RETURNING principal;
  $fn$;
REVOKE ALL ON FUNCTION api_key_principal(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_key_principal(text, text) TO {app_role};

-- Which door a turn came through ('ui' or 'api'), so the audit trail tells them apart.
ALTER TABLE messages ADD COLUMN channel text NOT NULL DEFAULT 'ui' CHECK (channel IN ('ui', 'api'));
