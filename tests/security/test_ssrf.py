"""Webhooks cannot make Gantry's worker call inside its own network (issue #7, item 2)."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deployments.notifications import post_webhook
from environments.models import Environment
from portal import outbound

pytestmark = pytest.mark.django_db


class Recorder(BaseHTTPRequestHandler):
    hits = []
    redirect_to = None

    def do_POST(self):
        Recorder.hits.append(self.path)
        if Recorder.redirect_to:
            self.send_response(302)
            self.send_header("Location", Recorder.redirect_to)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recorder.hits, Recorder.redirect_to = [], None
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.0.0.5/hook", "http://[::1]:8000/", "http://localhost:5432/",
                                 "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://192.168.1.1/"])
def test_internal_webhook_urls_are_refused_when_saved(api, admin, make_env, url):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", {"webhook_url": url})
    assert response.status_code == 400, response.content
    assert "webhook_url" in str(response.json()["detail"])
    assert Environment.objects.get(slug="prod").webhook_url == ""


def test_the_address_is_checked_again_when_sending(local_server):
    with pytest.raises(outbound.DeliveryFailed):
        post_webhook(f"http://127.0.0.1:{local_server}/hook", {"text": "hi"})
    assert Recorder.hits == []  # never called


def test_an_allow_listed_chat_server_is_called(settings, local_server):
    settings.GANTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert post_webhook(f"http://127.0.0.1:{local_server}/hook", {"text": "hi"}) == 200
    assert Recorder.hits == ["/hook"]


def test_redirects_are_not_followed(settings, local_server):
    settings.GANTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1/32"]
    Recorder.redirect_to = f"http://127.0.0.1:{local_server}/internal"
    with pytest.raises(outbound.DeliveryFailed):
        post_webhook(f"http://127.0.0.1:{local_server}/hook", {"text": "hi"})
    assert Recorder.hits == ["/hook"]


def test_the_failure_reads_the_same_for_an_open_port_a_closed_port_and_a_refused_address(settings, local_server):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    settings.GANTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    Recorder.redirect_to = "http://169.254.169.254/"
    messages = set()
    for url in (f"http://127.0.0.1:{local_server}/x", f"http://127.0.0.1:{closed_port}/x",
                "http://169.254.169.254/latest/", "http://10.255.255.1:81/"):
        with pytest.raises(outbound.DeliveryFailed) as info:
            post_webhook(url, {"text": "hi"}, timeout=1)
        messages.add(str(info.value))
    assert len(messages) == 1


class Internal(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>INTERNAL-ADMIN-PAGE secret=hunter2</html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_cluster_server_error_never_echoes_the_remote_body():
    from environments.models import Cluster
    from portal import kube

    server = ThreadingHTTPServer(("127.0.0.1", 0), Internal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cluster = Cluster.objects.create(name="internal", mode="server",
                                         server=f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(kube.KubeError) as info:
            kube.check_cluster(cluster)
    finally:
        server.shutdown()
    assert "INTERNAL-ADMIN-PAGE" not in str(info.value) and "hunter2" not in str(info.value)
    assert "not a Kubernetes Status" in str(info.value)


def test_kubeconfig_path_gives_one_error_for_missing_and_unreadable(api, admin, tmp_path):
    answers = []
    for path in (str(tmp_path / "missing.yaml"), str(tmp_path), "/proc/self/environ-nope", "relative/kubeconfig"):
        response = api(admin).post("/api/v1/clusters", {"name": "c1", "kubeconfig_path": path})
        assert response.status_code == 400
        answers.append(str(response.json()["detail"]).replace(path, "PATH"))
    assert len(set(answers)) == 1 and "cannot read" in answers[0] and "on the Gantry host" in answers[0]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/plain,secret"])
def test_operator_urls_open_only_http(url):
    """Prometheus and the demo's sandbox are opened through outbound.open_configured: never file:, ftp: or data:."""
    import urllib.error
    import urllib.request

    from portal import prometheus

    with pytest.raises(urllib.error.URLError):
        outbound.open_configured(urllib.request.Request(url), timeout=1)
    with pytest.raises(prometheus.PrometheusError, match="could not be reached"):
        prometheus.query(url, "up")


def test_a_redirect_from_an_operator_url_to_a_file_is_not_followed(tmp_path):
    import urllib.error
    import urllib.request

    secret = tmp_path / "secret"
    secret.write_text("s3cr3t")

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"file://{secret}")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.URLError):  # HTTPError (the 302 itself) is a URLError too
            outbound.open_configured(urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/"), 2)
    finally:
        server.shutdown()
