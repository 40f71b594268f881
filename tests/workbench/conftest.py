import pytest
from django.contrib.auth.models import User


@pytest.fixture
def staff_client(client, db):
    """A test client logged in as a superuser (staff, with every permission)."""
    admin = User.objects.create_superuser("admin", "admin@example.com", "x" * 12)
    client.force_login(admin)
    return client
