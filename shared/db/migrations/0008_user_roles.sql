-- Roles of a login beyond chatting: `reviewer` reviews every domain's training candidates,
-- `reviewer:<domain>` one domain's. The application role cannot read the users table; it
-- asks user_has_role() about one login and learns nothing else.
ALTER TABLE users ADD COLUMN roles text[] NOT NULL DEFAULT '{{}}'
  CHECK (array_to_string(roles, ',') ~ '^(reviewer(:[a-z0-9_]+)?(,|$))*$');

CREATE FUNCTION user_has_role(login text, role text) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$ SELECT EXISTS (SELECT 1 FROM users WHERE username = login AND NOT disabled AND role = ANY(roles)) $fn$;
REVOKE ALL ON FUNCTION user_has_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION user_has_role(text, text) TO {app_role};
