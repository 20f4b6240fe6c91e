"""Who may use `vidcls serve`: add, list and remove users, change a password or role, and make
or revoke API tokens (for scripts and Home Assistant: `Authorization: Bearer TOKEN`). Users
live in users.json in the data folder (passwords as argon2 hashes, tokens as SHA-256); a
running server sees changes at once.

  vidcls users add alice --role admin        (asks for the password twice)
  vidcls users token alice --label ha        (prints the token once)"""

from __future__ import annotations

import argparse
import getpass
import sys
import time

from ..errors import VidclsError
from ..serve.options import DATA_DEFAULT, default_data_folder
from ..serve.users import ROLES, Users, check_name

HELP = "who may use vidcls serve: users, passwords, roles, tokens"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="DIR",
        help=f"the server's data folder, as vidcls serve --data [{DATA_DEFAULT}]",
    )
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="a new user")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer", help="[viewer]")
    passwd = sub.add_parser("passwd", help="a new password (the user's sign-ins end)")
    passwd.add_argument("name")
    for q in (add, passwd):
        q.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin (scripts) instead of asking",
        )
    role = sub.add_parser("role", help="a new role (the user's sign-ins end)")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    remove = sub.add_parser("remove", help="remove a user, their sign-ins and tokens")
    remove.add_argument("name")
    sub.add_parser("list", help="users, roles and tokens (never a secret)")
    token = sub.add_parser("token", help="a new API token of the user's role (printed once)")
    token.add_argument("name")
    token.add_argument("--label", default="", help="what the token is for, shown by list")
    revoke = sub.add_parser("revoke", help="revoke a token (its id, from list) or --all")
    revoke.add_argument("name")
    revoke.add_argument("token_id", nargs="?")
    revoke.add_argument("--all", action="store_true", help="every token of the user")


def data_folder(args: argparse.Namespace) -> str:
    """--data, else the default vidcls serve uses."""
    return args.data or default_data_folder()


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice on the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise VidclsError("no terminal to ask for the password: use --password-stdin")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except EOFError:
        raise VidclsError("no password given") from None
    if again != first:
        raise VidclsError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    users = Users(data_folder(args))
    action = args.action
    if action == "add":
        check_name(args.name)
        users.add(args.name, read_password(args.password_stdin), args.role)
        print(f"added {args.name} ({args.role}) to {users.file}")
    elif action == "passwd":
        if users.get(args.name) is None:
            raise VidclsError(f"no user called {args.name!r}", users.file)
        users.passwd(args.name, read_password(args.password_stdin))
        print(f"new password for {args.name}; their sign-ins ended")
    elif action == "role":
        users.set_role(args.name, args.role)
        print(f"{args.name} is now {args.role}; their sign-ins ended")
    elif action == "remove":
        users.remove(args.name)
        print(f"removed {args.name}")
    elif action == "list":
        for user in users.names():
            print(f"{user.name}\t{user.role}\t{len(user.tokens)} token(s)")
            for token_id, t in sorted(user.tokens.items()):
                made = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.get("created", 0)))
                print(f"  token {token_id}\tmade {made}\t{t.get('label', '')}")
        if len(users) == 0:
            print(f"no users in {users.file}")
    elif action == "token":
        token_id, token = users.new_token(args.name, args.label)
        print(
            f"token {token_id} for {args.name}, shown once (send it as "
            f"'Authorization: Bearer TOKEN'):",
            file=sys.stderr,
        )
        print(token)
    elif action == "revoke":
        if args.all == (args.token_id is not None):
            raise VidclsError("name one token id, or --all")
        count = users.revoke(args.name, None if args.all else args.token_id)
        print(f"revoked {count} token(s) of {args.name}")
    return 0
