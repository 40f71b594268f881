"""State on the Flows page's State tab: the groups of the shared state, a group's
values, and a value edited as JSON.

A write goes through the project's state API (``workflow.state.StateStore``, the store
``ctx.state`` uses in an API step and ``manage.py state set`` uses): it needs no step's
context, and stores the value as any step's write does (a JSON copy, ``updated_at``
set, the row created when missing).
"""

import json

from django.db.models import Count
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from workflow.models import StateEntry
from workflow.state import StateStore

from .. import permissions

GROUPS = 200
ENTRIES = 200


def entries(request, site):
    """The groups (with how many values each holds) and, with ``?group=``, that group's
    values (JSON)."""
    groups = StateEntry.objects.values("group").annotate(n=Count("id")).order_by("group")[:GROUPS]
    group = request.GET.get("group", "")
    rows = StateEntry.objects.filter(group=group).order_by("key")[:ENTRIES] if group else []
    return JsonResponse(
        {
            "groups": [{"group": row["group"], "count": row["n"]} for row in groups],
            "group": group,
            "entries": [
                {"key": row.key, "value": row.value, "updatedAt": row.updated_at.isoformat()}
                for row in rows
            ],
            "mayEdit": permissions.may_edit_state(request.user),
        }
    )


@require_POST
def edit(request, site):
    """Store the posted ``value`` (JSON text) at ``group``/``key``: 403 without the
    change permission on state entries, 400 (nothing changed) when it is not JSON."""
    if not permissions.may_edit_state(request.user):
        return JsonResponse({"error": "You may not change state values."}, status=403)
    group = request.POST.get("group", "")
    key = request.POST.get("key", "")
    if not group or not key:
        return JsonResponse({"error": "A group and a key are needed."}, status=400)
    for name, given in (("group", group), ("key", key)):
        longest = StateEntry._meta.get_field(name).max_length
        if len(given) > longest:
            return JsonResponse({"error": f"A {name} is {longest} characters at most."}, status=400)
    try:
        value = json.loads(request.POST.get("value", ""))
    except json.JSONDecodeError as error:
        return JsonResponse(
            {"error": f"Not JSON: {error.msg} (line {error.lineno}, column {error.colno})."},
            status=400,
        )
    try:
        stored = StateStore().set(group, key, value)
    except (TypeError, ValueError) as error:  # NaN or Infinity: not JSON either
        return JsonResponse({"error": f"Not JSON: {error}"}, status=400)
    entry = StateEntry.objects.get(group=group, key=key)
    return JsonResponse({"key": key, "value": stored, "updatedAt": entry.updated_at.isoformat()})
