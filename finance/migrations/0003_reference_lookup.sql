-- Whether a word in a question refers to someone or something the firm knows: a person
-- (client, advisor or login) by full, first or last name in any case or by login, a client
-- id, an account id; and whether it is the asker themself. Row-level security hides other
-- clients' rows from a conversation, so without this a question about "bob" looks like a
-- question about nobody and gets the asker's own figures. The function answers yes or no
-- for one reference and returns nothing else: no name, no id, no figure. It runs as the
-- owner, so it sees every row.
CREATE FUNCTION finance_reference_known(kind text, ref text) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $fn$
    WITH people AS (
      SELECT name AS full_name, principal AS login FROM clients
      UNION ALL SELECT advisor, advisor FROM clients
      UNION ALL SELECT btrim(split_part(coalesce(display_name, username), '(', 1)), username FROM users
    ), named AS (
      SELECT login FROM people
      WHERE lower(ref) IN (lower(login), lower(full_name), lower(split_part(full_name, ' ', 1)),
                           lower(regexp_replace(full_name, '^.*\s', '')))
    )
    SELECT CASE kind
      WHEN 'account' THEN EXISTS (SELECT 1 FROM accounts WHERE upper(account_id) = upper(ref))
      WHEN 'client' THEN EXISTS (SELECT 1 FROM clients WHERE upper(client_id) = upper(ref))
      WHEN 'name' THEN EXISTS (SELECT 1 FROM named)
      WHEN 'self' THEN EXISTS (SELECT 1 FROM named WHERE login = app_principal())
      ELSE false
    END
  $fn$;
REVOKE ALL ON FUNCTION finance_reference_known(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION finance_reference_known(text, text) TO {app_role};
