-- Client books: clients, their accounts, holdings and transactions. A client row names the
-- principal who is the client (their login) and the advisor assigned to them. Row-level
-- security lets a conversation running as P read only the clients where P is the client or
-- the advisor, and through them only those accounts, holdings and transactions. No
-- principal (NULL) reads nothing. Loads go through the owner connection; the application
-- role has no write privilege here at all.
CREATE TABLE clients (
  client_id   text PRIMARY KEY,
  name        text NOT NULL,
  principal   text UNIQUE,
  advisor     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_advisor_idx ON clients (advisor);

CREATE TABLE accounts (
  account_id  text PRIMARY KEY,
  client_id   text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  name        text NOT NULL,
  kind        text NOT NULL DEFAULT 'taxable',   -- taxable, ira, roth_ira, 401k ...
  cash        numeric(20, 2) NOT NULL DEFAULT 0,
  currency    text NOT NULL DEFAULT 'USD'
);
CREATE INDEX accounts_client_idx ON accounts (client_id);

-- The current position per account and security; cost_basis is the total paid.
CREATE TABLE holdings (
  account_id  text NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
  symbol      text NOT NULL REFERENCES securities(symbol),
  quantity    numeric(20, 6) NOT NULL CHECK (quantity >= 0),
  cost_basis  numeric(20, 2) NOT NULL CHECK (cost_basis >= 0),
  PRIMARY KEY (account_id, symbol)
);

-- Quantities and amounts are positive; `kind` says which way they move. Deposits and
-- withdrawals are the external flows of a period return; the rest move cash inside it.
CREATE TABLE transactions (
  txn_id      text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
  day         date NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('buy', 'sell', 'dividend', 'deposit', 'withdrawal', 'fee')),
  symbol      text REFERENCES securities(symbol),
  quantity    numeric(20, 6) CHECK (quantity IS NULL OR quantity > 0),
  amount      numeric(20, 2) NOT NULL CHECK (amount >= 0),
  CHECK ((kind IN ('buy', 'sell')) = (symbol IS NOT NULL AND quantity IS NOT NULL))
);
CREATE INDEX transactions_account_idx ON transactions (account_id, day);

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE holdings ENABLE ROW LEVEL SECURITY;
ALTER TABLE transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY clients_visible ON clients FOR SELECT
  USING (principal = app_principal() OR advisor = app_principal());
-- The sub-selects run under the same policies, so visibility flows down from clients.
CREATE POLICY accounts_visible ON accounts FOR SELECT USING (client_id IN (SELECT client_id FROM clients));
CREATE POLICY holdings_visible ON holdings FOR SELECT USING (account_id IN (SELECT account_id FROM accounts));
CREATE POLICY transactions_visible ON transactions FOR SELECT USING (account_id IN (SELECT account_id FROM accounts));
GRANT SELECT ON clients, accounts, holdings, transactions TO {app_role};
