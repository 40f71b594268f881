"""Password hashing policy.

Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 20 ms a
hash here, against 180 ms for Django's default PBKDF2, so a burst of registrations is
not bound by hashing while each hash still costs an attacker memory.

Hashing is CPU-bound and takes 19 MiB while it runs, so at most one hash per core
runs at a time: more would not finish sooner, they would only hold more memory.
"""

import os
import threading

from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2Hasher

_hash_slots = threading.BoundedSemaphore(os.cpu_count() or 2)


class Argon2PasswordHasher(DjangoArgon2Hasher):
    time_cost = 2
    memory_cost = 19456
    parallelism = 1

    def encode(self, password, salt):
        with _hash_slots:
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with _hash_slots:
            return super().verify(password, encoded)
