"""Backups, drills, restores and targets are seen only by who may see their environment: to anyone
else each page and API route answers 404, as for a thing that does not exist
(environments.backups.queries: visible_target, visible_backup, visible_drill, visible_restore)."""
import pytest

from environments.backups.models import Backup, BackupTarget, Drill, Restore
from portal import crypto

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(staging):
    target = BackupTarget.objects.create(environment=staging, name="main-db", dsn_encrypted=crypto.encrypt("dbname=x"),
                                         destination={"kind": "local"})
    backup = Backup.objects.create(target=target, state="succeeded")
    drill = Drill.objects.create(backup=backup)
    restore = Restore.objects.create(backup=backup, database="copy")
    return target, backup, drill, restore


@pytest.fixture
def outsider(make_user, make_env):
    return make_user("olga", ("admin", make_env("elsewhere")))


def test_the_pages_answer_404_to_who_may_not_see_the_environment(login, outsider, admin, rows):
    target, backup, drill, _ = rows
    pages = ["/environments/staging/backups/", f"/environments/staging/backups/targets/{target.name}/edit/",
             f"/backups/{backup.pk}/restore/", f"/drills/{drill.pk}/"]
    client = login(outsider)
    assert [client.get(url).status_code for url in pages] == [404] * 4
    assert client.post(f"/backups/{backup.pk}/verify/").status_code == 404
    assert not Drill.objects.exclude(pk=drill.pk).exists()  # nothing was started
    assert [login(admin).get(url).status_code for url in pages] == [200] * 4


def test_the_api_answers_404_to_who_may_not_see_the_environment(api, outsider, admin, rows):
    target, backup, drill, restore = rows
    urls = [f"/api/v1/environments/staging/backup-targets/{target.name}", f"/api/v1/backups/{backup.pk}",
            f"/api/v1/drills/{drill.pk}", f"/api/v1/restores/{restore.pk}"]
    assert [api(outsider).get(url).status_code for url in urls] == [404] * 4
    assert [api(admin).get(url).status_code for url in urls] == [200] * 4
    missing = api(admin).get("/api/v1/environments/staging/backup-targets/nope")
    assert missing.status_code == 404 and missing.json()["detail"] == "staging has no backup target named nope"
