"""The browser pages. Each app's views module holds its pages; this file only routes."""
from django.contrib.auth import views as auth_views
from django.urls import path

from portal import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
]
