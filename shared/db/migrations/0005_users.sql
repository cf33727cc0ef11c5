-- Login accounts for the chat UIs. The login name is the principal every query runs as.
-- Passwords are stored as salted scrypt hashes (shared/auth.py). The application role
-- cannot read this table: it verifies a login through user_password_hash(), which returns
-- one account's hash and nothing else.
CREATE TABLE users (
  username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{{0,62}}$'),
  password_hash  text NOT NULL,
  display_name   text,
  disabled       boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION user_password_hash(login text) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$ SELECT password_hash FROM users WHERE username = login AND NOT disabled $fn$;
REVOKE ALL ON FUNCTION user_password_hash(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION user_password_hash(text) TO {app_role};
