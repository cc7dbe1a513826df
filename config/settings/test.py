"""Test settings: the same code paths as production, only faster password hashing."""

from .base import *  # noqa: F403
from .base import OMS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
OMS = {**OMS}
