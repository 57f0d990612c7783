"""The browser pages. Each app's views module holds its pages; this file only routes."""
from django.contrib.auth import views as auth_views
from django.urls import path

from portal.accounts.forms import ThrottledAuthenticationForm

from deployments import (
    approval_views, catalog_views, deployment_action_views, deployment_views, live_views, nav_views, release_views,
)
from deployments.compliance import views as compliance_views
from environments import cluster_views, environment_views, self_service_views
from environments.backups import views as backup_views
from deployments.monitoring import views as health_views
from portal import views
from portal.accounts import views as account_views
from portal.audit import views as audit_views
from portal.jobs import views as job_views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True,
                                                authentication_form=ThrottledAuthenticationForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
    # live health: the board's updates, a service in an environment, a deployment's verification
    path("board/updates/", health_views.board_updates, name="board_updates"),
    path("environments/<slug:slug>/services/<slug:name>/health/", health_views.service_health, name="service_health"),
    path("deployments/<int:deployment_id>/verification/", health_views.deployment_verification,
         name="deployment_verification"),
    # environments
    path("environments/", environment_views.environment_list, name="environment_list"),
    path("environments/new/", environment_views.environment_create, name="environment_create"),
    path("environments/request/", self_service_views.environment_request, name="environment_request"),
    path("environments/request/check/", self_service_views.environment_request_check,
         name="environment_request_check"),
    path("environment-templates/", self_service_views.template_list, name="template_list"),
    path("environment-templates/new/", self_service_views.template_edit, name="template_create"),
    path("environment-templates/<slug:name>/", self_service_views.template_edit, name="template_edit"),
    path("environment-templates/<slug:name>/delete/", self_service_views.template_delete, name="template_delete"),
    path("environments/<slug:slug>/", environment_views.environment_detail, name="environment_detail"),
    path("environments/<slug:slug>/edit/", environment_views.environment_edit, name="environment_edit"),
    path("environments/<slug:slug>/delete/", environment_views.environment_delete, name="environment_delete"),
    path("environments/<slug:slug>/reprovision/", environment_views.environment_reprovision,
         name="environment_reprovision"),
    path("environments/<slug:slug>/approve/", self_service_views.environment_decide, {"decision": "approve"},
         name="environment_approve"),
    path("environments/<slug:slug>/reject/", self_service_views.environment_decide, {"decision": "reject"},
         name="environment_reject"),
    path("environments/<slug:slug>/extend/", self_service_views.environment_extend, name="environment_extend"),
    path("environments/<slug:slug>/provisioning/", self_service_views.environment_provisioning,
         name="environment_provisioning"),
    path("environments/<slug:slug>/quota/", self_service_views.environment_quota, name="environment_quota"),
    # clusters
    path("clusters/", cluster_views.cluster_list, name="cluster_list"),
    path("clusters/new/", cluster_views.cluster_create, name="cluster_create"),
    path("clusters/<slug:name>/check/", cluster_views.cluster_check, name="cluster_check"),
    path("clusters/<slug:name>/delete/", cluster_views.cluster_delete, name="cluster_delete"),
    # the service catalog
    path("services/", catalog_views.service_list, name="service_list"),
    path("services/new/", catalog_views.service_create, name="service_create"),
    path("services/<slug:name>/", catalog_views.service_detail, name="service_detail"),
    path("services/<slug:name>/edit/", catalog_views.service_edit, name="service_edit"),
    path("services/<slug:name>/delete/", catalog_views.service_delete, name="service_delete"),
    # releases, deployments, approvals
    path("approvals/", approval_views.approval_inbox, name="approval_inbox"),
    path("approvals/badge.svg", approval_views.approval_badge, name="approval_badge"),
    path("approvals/count/", nav_views.approval_count, name="approval_count"),
    path("restores/<int:restore_id>/approve/", approval_views.restore_decide, {"decision": "approve"},
         name="restore_approve"),
    path("restores/<int:restore_id>/reject/", approval_views.restore_decide, {"decision": "reject"},
         name="restore_reject"),
    path("releases/", release_views.release_list, name="release_list"),
    path("releases/new/", release_views.release_create, name="release_create"),
    path("deployments/", deployment_views.deployment_list, name="deployment_list"),
    path("deployments/new/", deployment_views.deployment_request, name="deployment_request"),
    path("deployments/<int:deployment_id>/", deployment_views.deployment_detail, name="deployment_detail"),
    path("deployments/<int:deployment_id>/preview/", deployment_views.deployment_preview, name="deployment_preview"),
    path("deployments/<int:deployment_id>/approve", deployment_action_views.deployment_approve, name="deployment_approve"),
    path("deployments/<int:deployment_id>/reject", deployment_action_views.deployment_reject, name="deployment_reject"),
    path("deployments/<int:deployment_id>/cancel", deployment_action_views.deployment_cancel, name="deployment_cancel"),
    path("deployments/<int:deployment_id>/rollback", deployment_action_views.deployment_rollback, name="deployment_rollback"),
    path("environments/<slug:slug>/history/", live_views.environment_history, name="environment_history"),
    path("environments/<slug:slug>/live/", live_views.environment_live, name="environment_live"),
    path("environments/<slug:slug>/pending/", live_views.environment_pending, name="environment_pending"),
    # compliance: evidence packs and reports
    path("deployments/<int:deployment_id>/evidence/", compliance_views.evidence_page, name="evidence_page"),
    path("deployments/<int:deployment_id>/evidence.zip", compliance_views.evidence_zip, name="evidence_zip"),
    path("compliance/", compliance_views.sod_report, name="compliance"),
    path("compliance/separation-of-duties/", compliance_views.sod_report, name="sod_report"),
    path("compliance/access/", compliance_views.access_report, name="access_report"),
    path("compliance/period/", compliance_views.period_evidence, name="period_evidence"),
    path("compliance/period/<uuid:job_id>.zip", compliance_views.period_evidence_zip, name="period_evidence_zip"),
    # backups
    path("environments/<slug:slug>/backups/", backup_views.backup_list, name="backup_list"),
    path("environments/<slug:slug>/backups/targets/new/", backup_views.target_create, name="backup_target_create"),
    path("environments/<slug:slug>/backups/targets/<slug:name>/edit/", backup_views.target_edit,
         name="backup_target_edit"),
    path("environments/<slug:slug>/backups/start/", backup_views.backup_start, name="backup_start"),
    path("backups/<int:backup_id>/verify/", backup_views.backup_verify, name="backup_verify"),
    path("backups/<int:backup_id>/restore/", backup_views.backup_restore, name="backup_restore"),
    path("drills/<int:drill_id>/", backup_views.drill_detail, name="drill_detail"),
    # jobs
    path("jobs/", job_views.job_list, name="job_list"),
    path("jobs/<uuid:job_id>/", job_views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/retry/", job_views.job_retry, name="job_retry"),
    path("jobs/<uuid:job_id>/cancel/", job_views.job_cancel, name="job_cancel"),
    # the audit log
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit/export", audit_views.audit_export, name="audit_export"),
    # users, roles and tokens
    path("users/", account_views.user_list, name="user_list"),
    path("users/roles/grant/", account_views.role_grant, name="role_grant"),
    path("users/roles/<int:assignment_id>/revoke/", account_views.role_revoke, name="role_revoke"),
    path("tokens/", account_views.token_list, name="token_list"),
    path("tokens/time-zone/", account_views.time_zone_set, name="time_zone_set"),
    path("tokens/new/", account_views.token_create, name="token_create"),
    path("tokens/<int:token_id>/revoke/", account_views.token_revoke, name="token_revoke"),
]
