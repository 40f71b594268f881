from django.db import models


class Account(models.Model):
    """A registered user's credentials: the email is unique, the password hashed.

    The user's profile, status and settings live in the workflow state, as in the
    tutorial; this table holds only what must never be in state, events or logs.
    """

    user_id = models.CharField(max_length=64, unique=True)
    email = models.EmailField(unique=True)  # stored lower-cased
    password = models.CharField(max_length=256)  # a Django password hash
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.email
