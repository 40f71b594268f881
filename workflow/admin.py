"""Plain admin views of what the runtime records (the workbench builds on them)."""

import json

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .conf import workflow_settings
from .models import Delivery, Event, JoinState, LogEntry, Run, StateEntry
from .replay import FINISHED, replay_each, replay_event, skip_reason
from .store import store


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        """What the runtime recorded is deleted from here only where the WORKFLOW
        setting ADMIN_DELETE allows it (and then with the model's delete permission)."""
        return workflow_settings.ADMIN_DELETE and super().has_delete_permission(request, obj)

    def has_replay_permission(self, request):
        """Replaying runs code again, cancelling stops it: each takes the change
        permission on deliveries."""
        return request.user.has_perm("workflow.change_delivery")


@admin.display(description="trace", ordering="trace_id")
def trace_link(obj):
    """The trace id, linked to its page in the workbench when that is installed."""
    try:
        url = reverse("admin:workbench_trace", args=[obj.trace_id])
    except NoReverseMatch:
        return obj.trace_id[:8]
    return format_html('<a href="{}">{}</a>', url, obj.trace_id[:8])


def report_replays(model_admin, request, replays, refusals):
    ids = ", ".join(str(again.pk) for again in replays) or "none"
    model_admin.message_user(request, f"Replayed as new deliveries: {ids}.", messages.SUCCESS)
    for reason in refusals:
        model_admin.message_user(request, f"Not replayed: {reason}", messages.WARNING)


SKIPS_NAMED = 10


def report_skipped(model_admin, request, skipped):
    """One message naming the subscribers an event replay left alone (the first ten),
    and why."""
    if not skipped:
        return
    named = "; ".join(skip_reason(delivery) for delivery in skipped[:SKIPS_NAMED])
    if len(skipped) > SKIPS_NAMED:
        named += f"; and {len(skipped) - SKIPS_NAMED} more"
    hint = ""
    if any(delivery.status == Delivery.Status.SUCCEEDED for delivery in skipped):
        hint = " To run a succeeded one again, replay that delivery from Deliveries."
    model_admin.message_user(
        request, f"Only failed deliveries are replayed; skipped: {named}.{hint}", messages.INFO
    )


def cancel_traces(model_admin, request, trace_ids):
    pending = running = 0
    for trace_id in sorted(set(trace_ids)):
        cancelled = store.cancel(trace_id)
        pending, running = pending + cancelled.pending, running + cancelled.running
    model_admin.message_user(
        request,
        f"Cancelled {pending} pending and {running} running deliveries "
        f"in {len(set(trace_ids))} trace(s).",
        messages.SUCCESS,
    )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "emitted_by", trace_link, "created_at"]
    list_filter = ["topic", "emitted_by"]
    search_fields = ["trace_id", "topic", "data"]
    actions = ["replay_events", "cancel_traces"]

    @admin.action(
        description="Replay the failed deliveries of selected events", permissions=["replay"]
    )
    def replay_events(self, request, queryset):
        replays, refusals, skipped = [], [], []
        for event in queryset:
            made, refused, left = replay_event(event)
            replays, refusals, skipped = replays + made, refusals + refused, skipped + left
        report_replays(self, request, replays, refusals)
        report_skipped(self, request, skipped)

    @admin.action(description="Cancel the traces of selected events", permissions=["replay"])
    def cancel_traces(self, request, queryset):
        cancel_traces(self, request, queryset.values_list("trace_id", flat=True))


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "step_name", "status", "attempts", "due_at", trace_link, "replay_of"]
    # Dead letters: status "dead".
    list_filter = ["status", "step_name", "event__topic"]
    search_fields = ["trace_id", "step_name"]
    list_select_related = ["event"]
    actions = ["replay_deliveries", "cancel_traces"]

    @admin.action(description="Replay selected deliveries (finished ones)", permissions=["replay"])
    def replay_deliveries(self, request, queryset):
        replays, refusals = replay_each(queryset.filter(status__in=FINISHED))
        unfinished = queryset.exclude(status__in=FINISHED).count()
        if unfinished:
            refusals.append(f"{unfinished} not finished (pending, running or cancelled)")
        report_replays(self, request, replays, refusals)

    @admin.action(description="Cancel the traces of selected deliveries", permissions=["replay"])
    def cancel_traces(self, request, queryset):
        cancel_traces(self, request, queryset.values_list("trace_id", flat=True))


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "step_name",
        "status",
        "status_code",
        "attempt",
        trace_link,
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "status_code", "step_name"]
    search_fields = ["trace_id", "step_name"]


@admin.register(StateEntry)
class StateEntryAdmin(ReadOnlyAdmin):
    list_display = ["group", "key", "short_value", "updated_at"]
    list_filter = ["group"]
    search_fields = ["group", "key", "value"]
    readonly_fields = ["group", "key", "json_value", "created_at", "updated_at"]
    exclude = ["value"]

    @admin.display(description="value")
    def short_value(self, entry):
        text = json.dumps(entry.value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="value")
    def json_value(self, entry):
        return format_html("<pre>{}</pre>", json.dumps(entry.value, indent=2, ensure_ascii=False))


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "level", "step_name", "message", trace_link]
    list_filter = ["level", "step_name"]
    search_fields = ["trace_id", "message"]


@admin.register(JoinState)
class JoinStateAdmin(ReadOnlyAdmin):
    """What each join (``EventStep(join=...)``) received per key, and how it ended."""

    list_display = ["step_name", "key", "status", "received", trace_link, "deadline"]
    list_filter = ["status", "step_name"]
    search_fields = ["step_name", "key", "trace_id"]

    @admin.display(description="received")
    def received(self, state):
        return ", ".join(sorted(state.parts)) or "–"
