"""The sign-in backend: Django's ModelBackend, whose per-request user load also brings the user's
profile (the time zone every page reads), saving a query on every authenticated request."""
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class ModelWithProfileBackend(ModelBackend):
    def get_user(self, user_id):
        user = get_user_model()._default_manager.select_related("profile").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
