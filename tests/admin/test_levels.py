"""Staff levels are shown by name, from one mapping, wherever a page shows a level."""

import re

from kiosk.devices.services import device_add, device_pair
from kiosk.extensions import db
from kiosk.staff.levels import LEVEL_NAMES, level_choices, level_name


def test_every_level_has_a_name_and_the_number_stays_beside_it():
    assert sorted(LEVEL_NAMES) == [1, 2, 3, 4, 5, 6]
    assert level_name(5) == "Veterinarian (level 5)"
    assert level_name(6) == "Manager (level 6)"
    assert [value for value, _ in level_choices()] == [1, 2, 3, 4, 5, 6]
    assert level_name(9) == "Level 9"  # a level no one named yet is still shown


def test_the_staff_list_names_each_persons_level(client, clinic, login):
    login(clinic.user(6))
    page = client.get("/admin/staff").get_data(as_text=True)
    row = page.split(f'id="user-{clinic.user(5).id}"')[1].split("</tr>")[0]
    assert "<td>Veterinarian (level 5)</td>" in row
    # No level is a bare number in its cell any more.
    assert not re.search(r"<td>\s*[1-6]\s*</td>", page)


def test_the_staff_forms_offer_levels_by_name(client, clinic, login):
    login(clinic.user(6))
    for url in ("/admin/staff/new", f"/admin/staff/{clinic.user(2).id}"):
        page = client.get(url).get_data(as_text=True)
        assert '<option value="3"' in page and "Nurse (level 3)</option>" in page, url
        assert ">Level 3</option>" not in page, url


def test_the_top_bar_names_the_signed_in_level(client, clinic, login):
    login(clinic.user(4))
    page = client.get("/patients/").get_data(as_text=True)
    assert "Level 4 · Junior veterinarian (level 4)" in page
    assert "· level 4<" not in page


def test_a_tablets_staff_list_carries_each_level_name(client, clinic):
    device, code = device_add(actor=clinic.user(6), name="Ward 1", colour="blue", number=2)
    device, token = device_pair(code=code)
    db.session.commit()
    answer = client.get(f"/api/devices/{device.public_id}/staff",
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    named = {person["level"]: person["level_name"] for person in answer["staff"]}
    assert named[5] == "Veterinarian (level 5)" and named[2] == "Veterinary assistant (level 2)"
