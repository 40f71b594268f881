"""``manage.py state``: read and edit the shared state, (group, key) -> JSON value.

manage.py state list                       # the groups, with their number of keys
manage.py state list users                 # the keys of a group, with their values
manage.py state get users user-1           # one value, as JSON
manage.py state set users user-1 '{"status": "active"}'
manage.py state delete users user-1

Writes go through the same store as ``ctx.state`` (``workflow.state.StateStore``).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from workflow.management.jsonarg import parse_json
from workflow.models import StateEntry
from workflow.state import StateStore

PREVIEW = 120


def one_line(value, width=PREVIEW):
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


class Command(BaseCommand):
    help = "Reads and edits the workflow state: list, get, set, delete."
    requires_system_checks = []

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = actions.add_parser("list", help="the groups, or the keys of one group")
        listing.add_argument("group", nargs="?")
        listing.add_argument(
            "--full", action="store_true", help="print whole values, not one line each"
        )
        get = actions.add_parser("get", help="print one value as JSON")
        get.add_argument("group")
        get.add_argument("key")
        put = actions.add_parser("set", help="set a value (JSON)")
        put.add_argument("group")
        put.add_argument("key")
        put.add_argument("value", help="""a JSON value: '{"a": 1}', '"text"', 3, null""")
        delete = actions.add_parser("delete", help="delete a value")
        delete.add_argument("group")
        delete.add_argument("key")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_list(self, group=None, full=False, **options):
        if group is None:
            groups = StateEntry.objects.values("group").annotate(keys=Count("id"))
            for row in groups.order_by("group"):
                self.stdout.write(f"{row['group']}  ({row['keys']} key{'s' * (row['keys'] != 1)})")
            if not groups:
                self.stdout.write("the state is empty")
            return
        values = StateStore().get_group(group)
        if not values:
            raise CommandError(f"no state in group {group!r}")
        for key in sorted(values):
            shown = json.dumps(values[key], indent=2) if full else one_line(values[key])
            self.stdout.write(f"{key}  {shown}")

    def do_get(self, group, key, **options):
        entry = StateEntry.objects.filter(group=group, key=key).first()
        if entry is None:
            raise CommandError(f"no state at {group}/{key}")
        self.stdout.write(json.dumps(entry.value, indent=2, ensure_ascii=False))

    def do_set(self, group, key, value, **options):
        value = parse_json(value, "the value", """'{"status": "active"}' or '"text"'""")
        try:
            StateStore().set(group, key, value)
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"set {group}/{key}")

    def do_delete(self, group, key, **options):
        if not StateStore().delete(group, key):
            raise CommandError(f"no state at {group}/{key}")
        self.stdout.write(f"deleted {group}/{key}")
