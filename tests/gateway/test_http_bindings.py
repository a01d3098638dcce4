"""What the URL names is what a call acts on: path and query bindings over HTTP."""

from __future__ import annotations

import uuid

from ._platform import wait_for_method


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def _register(http, name: str) -> None:
    reply = await http.post("/v1/methods", json={"method": {
        "name": name, "version": "1.0.0", "description": "original"}})
    assert reply.status_code == 200, reply.text


async def test_a_body_naming_another_method_than_the_url_is_refused_and_changes_nothing(http):
    target, other = f"bind.{unique('a_')}", f"bind.{unique('b_')}"
    await _register(http, target)
    await _register(http, other)

    reply = await http.patch(f"/v1/methods/{target}", params={"update_mask": "description"},
                             json={"name": other, "description": "hijacked"})

    assert reply.status_code == 400, reply.text
    for name in (target, other):
        got = (await http.get(f"/v1/methods/{name}")).json()["method"]
        assert got["description"] == "original"
    # A body without the name, or with the same one, updates the method the URL names.
    for body in ({"description": "changed"}, {"name": target, "description": "again"}):
        fine = await http.patch(f"/v1/methods/{target}", params={"update_mask": "description"},
                                json=body)
        assert fine.status_code == 200, fine.text
        assert fine.json()["method"]["description"] == body["description"]


async def test_closing_a_session_by_url_cannot_close_the_one_a_body_names(http):
    sessions = [(await http.post("/v1/sessions", json={"user_id": unique("u_")})).json()["session"]
                for _ in range(2)]
    first, second = (s["session_id"] for s in sessions)

    reply = await http.post(f"/v1/sessions/{first}:close", json={"session_id": second})

    assert reply.status_code == 400, reply.text
    for session_id in (first, second):
        got = (await http.get(f"/v1/sessions/{session_id}")).json()["session"]
        assert got["status"] == "STATUS_ACTIVE"


async def test_a_plus_in_a_query_string_is_a_space(http, running):
    await wait_for_method(running, "casefile.create")
    name = f"wf {unique('plus_')}"
    created = await http.post("/v1/workflows", json={"name": name, "steps": [
        {"step_id": "create", "method": "casefile.create", "params": {"title": "t"}}]})
    assert created.status_code == 200, created.text

    # What urlencode and requests' params= write for a space.
    found = await http.get("/v1/workflows?name=" + name.replace(" ", "+"))

    assert found.status_code == 200, found.text
    assert [w["name"] for w in found.json()["workflows"]] == [name]



async def test_context_keys_with_capitals_are_changed_over_http(http):
    # A FieldMask's JSON form reads "priorityLevel" as priority_level; `keys` is literal.
    session = (await http.post("/v1/sessions", json={"user_id": unique("u_")})).json()["session"]
    path = f"/v1/sessions/{session['session_id']}/context"
    first = await http.patch(path, json={"values": {"priorityLevel": "high",
                                                    "priority_level": "keep-me", "URL": "a"}})
    assert first.status_code == 200, first.text

    changed = await http.patch(path, json={"values": {"priorityLevel": "low"},
                                           "keys": ["priorityLevel", "URL"]})

    assert changed.status_code == 200, changed.text
    assert changed.json()["context"]["values"] == {"priorityLevel": "low",
                                                   "priority_level": "keep-me"}
    both = await http.patch(path, json={"values": {}, "keys": ["a"], "update_mask": "b"})
    assert both.status_code == 400, both.text
