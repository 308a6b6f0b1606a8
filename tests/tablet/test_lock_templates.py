"""The lock screen's markup comes from the server: every page of the layout carries the
<template>s static/js/lock.js fills (a tablet may open any of them, signed in or not), once
each, with a slot for everything it says and nobody's data in them."""

import re

import pytest

from tests import factories

LOCK_TEMPLATES = ("tpl-lock-screen", "tpl-lock-box", "tpl-lock-name", "tpl-lock-pin",
                  "tpl-lock-button")


def template_of(page: str, template_id: str) -> str:
    """The markup inside <template id=…>, which must be on the page exactly once."""
    found = re.findall(rf'<template id="{template_id}">(.*?)</template>', page, re.S)
    assert len(found) == 1, (template_id, len(found))
    return found[0]


@pytest.mark.parametrize("signed_in", [False, True], ids=["sign-in page", "patients list"])
def test_every_page_carries_the_lock_screens_templates(clinic, client, login, signed_in):
    if signed_in:
        factories.patient_make(clinic, "Biscuit")
        login(clinic.user(5))
    response = client.get("/patients/" if signed_in else "/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    found = {name: template_of(page, name) for name in LOCK_TEMPLATES}
    assert 'id="lock-screen"' in found["tpl-lock-screen"] and "hidden" in found["tpl-lock-screen"]
    box = found["tpl-lock-box"]
    assert 'id="lock-title"' in box and 'data-slot="tablet"' in box
    for part in ("revoked", "no_staff", "choosing", "waiting", "one"):
        assert f'data-if="{part}"' in box, part
    assert 'href="/pair"' in box and 'class="lock-people"' in box
    assert 'data-slot="name"' in found["tpl-lock-name"]
    pin = found["tpl-lock-pin"]
    assert 'name="pin"' in pin and 'data-slot-attr="aria-label:label"' in pin
    assert 'type="submit"' in pin and "lock-back" in pin and 'class="field-error"' in pin
    assert found["tpl-lock-button"].startswith('<button type="button" id="lock-now"')
    # The page holds the screen only as templates: lock.js draws it on a paired tablet.
    outside = re.sub(r"<template .*?</template>", "", page, flags=re.S)
    assert 'id="lock-screen"' not in outside
    if signed_in:
        assert "Biscuit" in outside and not any(
            "Biscuit" in markup or clinic.user(5).name in markup for markup in found.values())
