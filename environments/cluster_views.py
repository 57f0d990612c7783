"""Pages for clusters (admins only): list, register, check, remove. They parse the form, call environments.clusters, render."""
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.accounts import policies
from portal.live import Poll, state_of
from portal.pages import delete_page, form_action, needs_role, require

from . import clusters
from .choices import CLUSTER_MODE_CHOICES
from .models import Cluster, Environment

TABLE_FRAGMENT = "cluster-table"


def _require_cluster_admin(request):
    require(policies.admin_refusal(request.user, "manage clusters"))


@login_required
@needs_role
def cluster_list(request):
    """The clusters; the table is a live fragment (portal/live.py), so a check that a worker finishes
    (after registering a cluster, say) shows without a reload. Version: the clusters' count, latest
    edit and latest check, and the environments placed on clusters (two aggregates)."""
    _require_cluster_admin(request)
    parts = (state_of(Cluster.objects.all(), "updated_at", "last_checked_at"),
             state_of(Environment.objects.exclude(cluster=None), "created_at"))
    poll = Poll(request)

    def render_list(tag):
        clusters = Cluster.objects.annotate(environment_count=Count("environments")).order_by("name")
        context = {"section": "clusters", "clusters": clusters, "clusters_version": tag}
        return render(request, "clusters/_table.html" if poll.is_poll else "clusters/list.html", context)

    if poll.wants(TABLE_FRAGMENT):
        return poll.respond(parts, render_list)
    return render_list(poll.version_for(parts, TABLE_FRAGMENT))


def _cluster_data(post):
    """The fields of the chosen connection mode only (the service infers the mode from them)."""
    mode = post.get("mode", "")
    data = {"name": post.get("name", "").strip()}
    if mode == "server":
        data.update(server=post.get("server", "").strip(), token=post.get("token", "").strip(),
                    ca_data=post.get("ca_data", "").strip(), insecure=bool(post.get("insecure")))
    elif mode == "kubeconfig_path":
        data.update(kubeconfig_path=post.get("kubeconfig_path", "").strip(), context=post.get("context", "").strip())
    elif mode == "kubeconfig":
        data.update(kubeconfig=post.get("kubeconfig", ""), context=post.get("context", "").strip())
    elif mode == "in_cluster":
        data["in_cluster"] = True
    return data


@login_required
@needs_role
def cluster_create(request):
    context = {"section": "clusters", "modes": CLUSTER_MODE_CHOICES}
    if request.method != "POST":
        _require_cluster_admin(request)
        return render(request, "clusters/form.html", dict(context, values={"mode": "server"}))
    data = _cluster_data(request.POST)
    # Secrets are not sent back into the page: the user types them again.
    values = {key: request.POST.get(key, "") for key in ("name", "mode", "server", "ca_data", "kubeconfig_path", "context")}
    values["insecure"] = bool(request.POST.get("insecure"))
    values["mode"] = values["mode"] or "server"
    return form_action(request, lambda: clusters.create_cluster(request.user, data, request=request),
                       template="clusters/form.html", context=dict(context, values=values),
                       done=lambda cluster: f"Cluster {cluster.name} registered; checking the connection now.",
                       then="cluster_list")


def _cluster(name):
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        raise Http404(f"no cluster '{name}'")
    return cluster


@login_required
@needs_role
@require_POST
def cluster_check(request, name):
    job = clusters.check_cluster(request.user, _cluster(name), request=request)
    return redirect("job_detail", job_id=job.pk)


@login_required
@needs_role
def cluster_delete(request, name):
    cluster = _cluster(name)
    return delete_page(request, may_delete=_require_cluster_admin, confirm={
        "section": "clusters",
        "title": f"Remove cluster {cluster.name}?",
        "what": f"the cluster {cluster.name} ({cluster.location})",
        "consequence": "Gantry forgets the cluster and its stored credentials. Nothing on the cluster changes.",
        "cancel_url": reverse("cluster_list"),
    }, delete=lambda: clusters.delete_cluster(request.user, cluster, request=request),
        done=(f"Cluster {cluster.name} removed.", "cluster_list"), back="cluster_list")
