"""Loading a cassette never blocks the server: other sessions and health checks go on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from fakeupstream import FakeUpstream

from ..helpers import TIMEOUT, SlowLoads, http, recv_event, ws_connect

SESSION = "version: 1\ntimeline:\n- server: {type: session.created, event_id: e1}\n"


@pytest.mark.asyncio
async def test_health_is_answered_while_a_cassette_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow.yaml").write_text(SESSION)
    loads = SlowLoads(monkeypatch)
    async with FakeUpstream(tmp_path) as fake:

        async def connect() -> str:
            async with ws_connect(f"{fake.url}/cassettes/slow/v1/realtime?model=m") as ws:
                return str((await recv_event(ws))["type"])

        session = asyncio.create_task(connect())
        await loads.started()
        status, body = await http(fake.http_url, "GET", "/__fakeupstream/health")
        assert (status, body["status"]) == (200, "ok")
        loads.release()
        assert await asyncio.wait_for(session, TIMEOUT) == "session.created"
    assert loads.waited == [True]


@pytest.mark.asyncio
async def test_health_is_answered_while_the_admin_api_loads_a_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow.yaml").write_text(SESSION)
    loads = SlowLoads(monkeypatch)
    async with FakeUpstream(tmp_path) as fake:
        target = "/__fakeupstream/cassette?name=slow"
        select = asyncio.create_task(http(fake.http_url, "POST", target))
        await loads.started()
        status, body = await http(fake.http_url, "GET", "/__fakeupstream/health")
        assert (status, body) == (200, {"status": "ok", "cassette": None})
        loads.release()
        assert await asyncio.wait_for(select, TIMEOUT) == (200, {"cassette": "slow"})
        assert fake.current_cassette() == "slow"
    assert loads.waited == [True]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "target", "key"),
    [
        ("GET", "/__fakeupstream/cassettes", "cassettes"),  # describes every cassette
        ("GET", "/v1/models", "data"),  # the models every cassette names
    ],
)
async def test_health_is_answered_while_a_listing_loads_every_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, target: str, key: str
) -> None:
    (tmp_path / "slow.yaml").write_text(SESSION)
    loads = SlowLoads(monkeypatch)
    async with FakeUpstream(tmp_path) as fake:
        headers = {"Authorization": "Bearer sk-test"}
        listing = asyncio.create_task(http(fake.http_url, method, target, headers=headers))
        await loads.started()
        status, body = await http(fake.http_url, "GET", "/__fakeupstream/health")
        assert (status, body["status"]) == (200, "ok")
        loads.release()
        status, body = await asyncio.wait_for(listing, TIMEOUT)
        assert status == 200 and body[key]
    assert loads.waited == [True]


@pytest.mark.asyncio
async def test_an_alias_bomb_is_a_500_and_the_server_goes_on(tmp_path: Path) -> None:
    lines = ["version: 1", "timeline:", "- server: {type: a, v: &a [l,l,l,l,l,l,l,l,l]}"]
    for level in range(1, 9):
        name, previous = "abcdefghi"[level], "abcdefghi"[level - 1]
        lines.append(f"- server: {{type: a, v: &{name} [" + ",".join(["*" + previous] * 9) + "]}")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "session.yaml").write_text(SESSION)
    async with FakeUpstream(tmp_path) as fake:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(f"{fake.url}/cassettes/bomb/v1/realtime?model=m"):
                pass
        response = info.value.response
        assert response.status_code == 500
        error = json.loads(response.body)["error"]
        assert error["code"] == "invalid_cassette"
        assert "alias" in error["message"]
        assert str(tmp_path) not in response.body.decode()
        async with ws_connect(f"{fake.url}/cassettes/session/v1/realtime?model=m") as ws:
            assert (await recv_event(ws))["type"] == "session.created"


@pytest.mark.asyncio
async def test_no_answer_shows_the_cassette_directory(tmp_path: Path) -> None:
    (tmp_path / "session.yaml").write_text(SESSION)
    (tmp_path / "broken.yaml").write_text("version: 1\ntimeline:\n- server: [not, an, event]\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "nested.yaml").write_text("version: 2\ntimeline: []\n")
    answers: list[str] = []
    async with FakeUpstream(tmp_path) as fake:
        for method, target, status in [
            ("POST", "/__fakeupstream/cassette?name=nope", 404),
            ("POST", "/__fakeupstream/cassette?name=broken", 422),
            ("POST", "/__fakeupstream/cassette?name=bad/nested", 422),
            ("POST", "/__fakeupstream/cassette?name=../etc/passwd", 404),
            ("GET", "/__fakeupstream/cassettes", 200),
        ]:
            code, body = await http(fake.http_url, method, target)
            assert code == status, (target, body)
            answers.append(json.dumps(body))
        for name, status in [("nope", 404), ("broken", 500), ("bad/nested", 500)]:
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"{fake.url}/cassettes/{name}/v1/realtime?model=m"):
                    pass
            assert info.value.response.status_code == status
            answers.append(info.value.response.body.decode())
        answers.append(json.dumps((await http(fake.http_url, "GET", "/__fakeupstream/report"))[1]))
    assert "broken.yaml:3:11: expected an event" in answers[1]
    assert "nested.yaml:1:10: unsupported cassette format version 2" in answers[2]
    for answer in answers:
        assert str(tmp_path) not in answer


@pytest.mark.asyncio
async def test_a_cassette_whose_load_failed_is_refused_again_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.yaml").write_text("version: [\n")
    threads: list[object] = []
    real = asyncio.to_thread

    async def counted(function: Any, /, *args: Any, **kwargs: Any) -> Any:
        threads.append(function)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    async with FakeUpstream(tmp_path) as fake:
        for _ in range(2):
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"{fake.url}/cassettes/broken/v1/realtime?model=m"):
                    pass
            assert info.value.response.status_code == 500
    assert len(threads) == 1  # the first load read the file; the failure is remembered
