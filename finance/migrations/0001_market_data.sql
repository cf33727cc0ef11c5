-- Market data: securities and their daily prices, with every day kept (history), loaded by
-- `assistants finance update-market` through the owner connection. Public reference data:
-- the application role may read it, never write it.
CREATE TABLE securities (
  symbol       text PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.-]{{0,14}}$'),
  name         text,
  asset_class  text,                 -- equity, bond, cash, real estate, commodity ...
  sector       text,
  currency     text NOT NULL DEFAULT 'USD',
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE prices (
  symbol       text NOT NULL REFERENCES securities(symbol),
  day          date NOT NULL,
  close        numeric(20, 6) NOT NULL CHECK (close > 0),
  open         numeric(20, 6),
  high         numeric(20, 6),
  low          numeric(20, 6),
  volume       bigint,
  source       text,
  imported_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, day)
);
-- "The latest close on or before D" for many symbols: the primary key serves it backwards.

-- One row per run of the importer: what came in, from where, covering which days.
CREATE TABLE market_imports (
  id           bigserial PRIMARY KEY,
  source       text NOT NULL,
  rows_read    integer NOT NULL,
  inserted     integer NOT NULL,
  changed      integer NOT NULL,
  first_day    date,
  last_day     date,
  imported_at  timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON securities, prices, market_imports TO {app_role};
