"""``assistants db|engine|vllm|config|users|DOMAIN``: administration. The embedded Postgres,
the managed model engine, the vLLM server, a domain's
validated settings, the login accounts of the chat UIs, and each domain's own data commands
(``domain.commands`` in its config, e.g. ``assistants finance update-market``)."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from shared.plugins import COMMAND_GROUP, lookup

from .common import command, runtime
from .domains import domains, settings_for


def cmd_db(args) -> int:
    from shared.db import embedded

    s = settings_for(domains()[0])
    if s.database.url:
        print("DATABASE_URL is set: the embedded server is not used")
        return 0
    data_dir = s.state_dir / "pg"
    if args.action == "start":
        runtime(domains()[0]).db.close()  # opening starts, migrates and self-checks it
        print(f"embedded Postgres running in {data_dir.resolve()}")
    elif args.action == "stop":
        print("stopped" if embedded.stop(data_dir) else "not running")
    else:
        print(f"embedded Postgres in {data_dir.resolve()}: {'running' if embedded.is_running(data_dir) else 'stopped'}")
    return 0


def cmd_engine(args) -> int:
    """The managed llama.cpp engine that serves the domains' local model (``generation.serve: engine``)."""
    from shared.generation.engine import EngineManager

    manager = EngineManager(settings_for(domains()[0]).state_dir)
    if args.action == "stop":
        print("stopped" if manager.stop() else "not running")
        return 0
    status = manager.status()
    if not status["running"]:
        print(f"engine: not running (log {status['log']})")
        return 0
    print(f"engine: pid {status['pid']} at {status['url']}, {'answering' if status['healthy'] else 'NOT answering'}; "
          f"{status['slots']} slots, {status['threads']} threads; model {status['model']}")
    for i, adapter in enumerate(status["adapters"]):
        print(f"  LoRA {i}: {adapter}")
    print(f"  log: {status['log']}")
    return 0


def cmd_vllm(args) -> int:
    """vLLM serving the domains (the ``vllm`` profile): ``start`` it with the bundled model's HF
    copy and every domain's promoted adapter under the domain's name, ``status``, ``stop``.
    Its virtualenv comes from ``scripts/vllm.sh env``."""
    from shared.generation import GenerationError
    from shared.generation.vllm import VllmManager

    state_dir = settings_for(domains()[0]).state_dir
    manager = VllmManager(state_dir, args.env)
    if args.action == "stop":
        print("stopped" if manager.stop() else "not running")
        return 0
    if args.action == "start":
        from shared.finetune.serving import vllm_spec

        try:
            spec = vllm_spec(state_dir, domains(), host=args.host, port=args.port, max_model_len=args.max_model_len)
            running = manager.start(spec)
        except GenerationError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"vLLM pid {running.pid} at {running.url}/v1 serving {spec.served_name}"
              + "".join(f"\n  LoRA {name}: {path}" for name, path in spec.loras.items()))
        return 0
    status = manager.status()
    if not status["running"]:
        print(f"vLLM: not running (env {status['env']}, log {status['log']})")
        return 0
    print(f"vLLM: pid {status['pid']} at {status['url']}/v1, {'answering' if status['healthy'] else 'NOT answering'}; "
          f"model {status['model']} ({status['model_dir']})")
    for name, path in status["adapters"].items():
        print(f"  LoRA {name}: {path}")
    print(f"  log: {status['log']}")
    return 0


def cmd_users(args) -> int:
    import getpass

    from shared.auth import UserError, Users

    with runtime(domains()[0]) as rt:
        users = Users(rt.db)
        if args.action == "list":
            for u in users.list():
                print(f"{u.username:20s} {u.display_name or '':30s} {','.join(u.roles):20s} {'disabled' if u.disabled else ''}")
            return 0
        if not args.username:
            print("error: a USERNAME is required", file=sys.stderr)
            return 2
        if args.action == "disable":
            found = users.disable(args.username)
            print(f"disabled {args.username}" if found else f"no user {args.username}")
            return 0 if found else 1
        try:
            if args.action == "roles":
                found = users.set_roles(args.username, args.role or [])
                print(f"{args.username}: roles {', '.join(args.role or []) or 'none'}" if found else f"no user {args.username}")
                return 0 if found else 1
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.username}: ")
            users.add(args.username, password, args.display_name, roles=args.role)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"user {args.username} saved (scrypt hash); the login name is the principal the database sees")
    return 0


def cmd_domain(args) -> int:
    """A domain's own command (``domain.commands``)."""
    if not getattr(args, "needs_runtime", True):
        print(args.run(None, args))
        return 0
    with runtime(args.domain) as rt:
        print(f"[{args.domain}] {args.run(rt, args)}")
    return 0


def cmd_config(args) -> int:
    print(yaml.safe_dump(settings_for(args.domain).model_dump(mode="json"), sort_keys=False), end="")
    return 0


def register(sub) -> None:
    """Add ``db``, ``config``, ``users`` and each domain's data commands to the top-level
    subparsers of ``assistants``."""
    command(sub, "db", cmd_db, "manage the embedded Postgres", domain=False).add_argument(
        "action", choices=["start", "stop", "status"])

    command(sub, "engine", cmd_engine, "the managed llama.cpp engine serving the local model", domain=False).add_argument(
        "action", choices=["status", "stop"])

    vl = command(sub, "vllm", cmd_vllm, "vLLM serving the domains' model and adapters (profile vllm)", domain=False)
    vl.add_argument("action", choices=["start", "status", "stop"])
    vl.add_argument("--env", type=Path, help="vLLM's virtualenv (default: $VLLM_VENV or <state>/vllm-env)")
    vl.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    vl.add_argument("--port", type=int, default=8000)
    vl.add_argument("--max-model-len", type=int, default=2048)

    command(sub, "config", cmd_config, "print a domain's validated settings")

    us = command(sub, "users", cmd_users, "login accounts for the chat UIs", domain=False)
    us.add_argument("action", choices=["add", "list", "roles", "disable"])
    us.add_argument("username", nargs="?")
    us.add_argument("--display-name")
    us.add_argument("--role", action="append", metavar="ROLE",
                    help="reviewer (every domain's review page) or reviewer:DOMAIN; repeatable. With add: the "
                         "account's roles (kept when omitted); with roles: the new set (none when omitted)")
    us.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    for domain in domains():
        spec = settings_for(domain).domain.commands
        if spec:
            dp = sub.add_parser(domain, help=f"{domain} data commands")
            dp.set_defaults(func=cmd_domain, domain=domain)
            lookup(COMMAND_GROUP, spec)(dp.add_subparsers(dest="action", required=True))
