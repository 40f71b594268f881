"""Plain admin views of what the runtime records (the workbench builds on them)."""

from django.contrib import admin

from .models import Delivery, Event, LogEntry, Run, StateEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "emitted_by", "trace_id", "created_at"]
    list_filter = ["topic", "emitted_by"]
    search_fields = ["trace_id", "topic"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "step_name", "status", "attempts", "due_at", "trace_id"]
    list_filter = ["status", "step_name"]
    search_fields = ["trace_id", "step_name"]
    list_select_related = ["event"]


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
