from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users (example flow)"
    default_auto_field = "django.db.models.BigAutoField"
