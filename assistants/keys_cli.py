"""``assistants keys create|list|revoke``: keys of the OpenAI-compatible API (/v1). A key acts
as its principal (row-level security applies as for that user signed in to the UI); it is
printed once at creation and stored only as a hash."""
from __future__ import annotations

import sys

from .common import command, runtime
from .domains import domains


def _keys():
    from shared.api_keys import ApiKeys

    # Every domain shares one database; the first domain's settings locate it (as `users` does).
    rt = runtime(domains()[0])
    return rt, ApiKeys(rt.db)


def cmd_create(args) -> int:
    rt, keys = _keys()
    with rt:
        try:
            kid, key = keys.create(args.principal, args.domain, args.expires)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    scope = f"domain {args.domain}" if args.domain else "every domain"
    until = f"expires in {args.expires:g} day(s)" if args.expires else "no expiry"
    print(key)
    print(f"key {kid} for {args.principal} ({scope}, {until}); it is shown only now: store it safely",
          file=sys.stderr)
    return 0


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def cmd_list(args) -> int:
    rt, keys = _keys()
    with rt:
        found = keys.list(args.principal)
    for k in found:
        state = "revoked" if k.revoked_at else "active"
        print(f"{k.id}  {k.prefix}…  {k.principal:16s} {k.domain or 'all':10s} {state:8s} created {_when(k.created_at)}"
              f"  expires {_when(k.expires_at)}  last used {_when(k.last_used)}")
    print(f"{len(found)} key(s)")
    return 0


def cmd_revoke(args) -> int:
    rt, keys = _keys()
    with rt:
        n = keys.revoke(args.key)
    print(f"revoked {n} key(s)" if n else f"no active key {args.key}")
    return 0 if n else 1


def register(sub) -> None:
    """Add ``keys`` to the top-level subparsers of ``assistants``."""
    ks = sub.add_parser("keys", help="keys of the OpenAI-compatible API (/v1)")
    actions = ks.add_subparsers(dest="action", required=True)
    cr = command(actions, "create", cmd_create, "a new key for PRINCIPAL, printed once", domain=False)
    cr.add_argument("principal", help="the user the key acts as (row-level security applies to it)")
    cr.add_argument("--domain", choices=domains(), help="valid for this domain only (default: every domain)")
    cr.add_argument("--expires", type=float, metavar="DAYS", help="expire after this many days (default: never)")
    ls = command(actions, "list", cmd_list, "keys (prefix, principal, domain, state, dates); never the keys themselves",
                 domain=False)
    ls.add_argument("--principal", help="only this principal's keys")
    rv = command(actions, "revoke", cmd_revoke, "revoke a key by its id or its listed prefix", domain=False)
    rv.add_argument("key", help="the key id, or the prefix `keys list` shows")
