"""Plain admin views of what the runtime records (the workbench builds on them)."""

from django.contrib import admin, messages
from django.db import transaction

from .models import Delivery, Event, LogEntry, Run, StateEntry
from .replay import FINISHED, replay, replay_event


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_replay_permission(self, request):
        """Replaying runs code again: it takes the change permission on deliveries."""
        return request.user.has_perm("workflow.change_delivery")


def report_replays(model_admin, request, replays, skipped):
    ids = ", ".join(str(again.pk) for again in replays) or "none"
    model_admin.message_user(request, f"Replayed as new deliveries: {ids}.", messages.SUCCESS)
    if skipped:
        model_admin.message_user(
            request,
            f"{skipped} still pending or running: they were not replayed.",
            messages.WARNING,
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "emitted_by", "trace_id", "created_at"]
    list_filter = ["topic", "emitted_by"]
    search_fields = ["trace_id", "topic"]
    actions = ["replay_events"]

    @admin.action(description="Replay selected events to their subscribers", permissions=["replay"])
    def replay_events(self, request, queryset):
        with transaction.atomic():
            replays = [again for event in queryset for again in replay_event(event)]
        report_replays(self, request, replays, skipped=0)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "step_name", "status", "attempts", "due_at", "trace_id", "replay_of"]
    list_filter = ["status", "step_name"]
    search_fields = ["trace_id", "step_name"]
    list_select_related = ["event"]
    actions = ["replay_deliveries"]

    @admin.action(description="Replay selected deliveries (finished ones)", permissions=["replay"])
    def replay_deliveries(self, request, queryset):
        finished = queryset.filter(status__in=FINISHED)
        with transaction.atomic():
            replays = [replay(delivery) for delivery in finished]
        report_replays(self, request, replays, skipped=queryset.count() - len(replays))


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "step_name", "status", "attempt", "started_at", "finished_at"]
    list_filter = ["status", "step_name"]
    search_fields = ["trace_id", "step_name"]


@admin.register(StateEntry)
class StateEntryAdmin(ReadOnlyAdmin):
    list_display = ["group", "key", "updated_at"]
    list_filter = ["group"]
    search_fields = ["group", "key"]


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "level", "step_name", "message", "trace_id"]
    list_filter = ["level", "step_name"]
    search_fields = ["trace_id", "message"]
