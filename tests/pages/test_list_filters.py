"""Every list page's filter form ends the same way (templates/_filter_actions.html): a Filter button,
and a Clear link back to the unfiltered list only while a filter is on."""
import pytest

from tests.pages.conftest import text

pytestmark = pytest.mark.django_db

LISTS = [
    ("/jobs/", "state=failed"),
    ("/jobs/", "system=1"),
    ("/audit/", "outcome=denied"),
    ("/environments/", "tier=production"),
    ("/releases/", "service=web"),
    ("/deployments/", "state=failed"),
]


@pytest.mark.parametrize(("url", "query"), LISTS)
def test_a_filtered_list_offers_to_clear_its_filter(login, admin, web, url, query):
    client = login(admin)
    clear = f'<a href="{url}">Clear</a>'
    unfiltered = text(client.get(url))
    assert '<button type="submit" class="button">Filter</button>' in unfiltered
    assert clear not in unfiltered
    assert clear in text(client.get(f"{url}?{query}"))
