import pytest
from django.contrib.auth.models import Permission, User


@pytest.fixture
def staff_client(client, db):
    """A test client logged in as a superuser (staff, with every permission)."""
    admin = User.objects.create_superuser("admin", "admin@example.com", "x" * 12)
    client.force_login(admin)
    return client


def staff_user(username, *perms):
    """A staff user with exactly these permissions ("app_label.codename")."""
    user = User.objects.create_user(username, password="x" * 12, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
