-- Login sessions of the chat UIs, in the database rather than in each process, so that
-- every replica of a domain honours the same sign-in and sessions end everywhere at once.
-- Only a SHA-256 of each token is stored: a copy of this table signs nobody in. The
-- application role reaches it only through the functions below, which also drop a session
-- once it is past its lifetime or idle limit, or its account is disabled.
CREATE TABLE ui_sessions (
  token_hash  text PRIMARY KEY,
  username    text NOT NULL REFERENCES users(username) ON DELETE CASCADE,
  domain      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ui_sessions_domain_idx ON ui_sessions (domain, created_at);

CREATE FUNCTION session_open(token text, login text, dom text, lifetime_s double precision) RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$
    DELETE FROM ui_sessions WHERE domain = dom AND created_at < now() - make_interval(secs => lifetime_s);
    INSERT INTO ui_sessions (token_hash, username, domain) VALUES (token, login, dom);
  $fn$;

CREATE FUNCTION session_user_of(token text, dom text, lifetime_s double precision, idle_s double precision)
  RETURNS text
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$
    UPDATE ui_sessions s SET last_seen = now()
      FROM users u
     WHERE s.token_hash = token AND s.domain = dom AND u.username = s.username AND NOT u.disabled
       AND s.created_at > now() - make_interval(secs => lifetime_s)
       AND s.last_seen > now() - make_interval(secs => idle_s)
    RETURNING s.username;
  $fn$;

CREATE FUNCTION session_close(token text) RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$ DELETE FROM ui_sessions WHERE token_hash = token $fn$;

REVOKE ALL ON FUNCTION session_open(text, text, text, double precision), session_user_of(text, text, double precision, double precision),
  session_close(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_open(text, text, text, double precision), session_user_of(text, text, double precision, double precision),
  session_close(text) TO {app_role};
