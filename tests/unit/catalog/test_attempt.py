"""The recorded last attempt: one result word, a separate message, and state from earlier versions still read."""

from __future__ import annotations

import json

import pytest

from trivy_mirror.catalog.attempt import HISTORY, Attempt
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.state import attempt_history, last_attempt, with_attempt
from trivy_mirror.commands.status import exit_code
from trivy_mirror.vex.storage import VexState


@pytest.mark.parametrize(("stored", "result", "message"), [
    ({"at": "2026-01-01T00:00:00Z", "result": "failed", "message": "no source could be used: x"}, "failed",
     "no source could be used: x"),
    ({"at": "2026-01-01T00:00:00Z", "result": "error: no source could be used: x"}, "failed",
     "no source could be used: x"),
    ({"result": "error: kept the current version: too old"}, "refused", "kept the current version: too old"),
    ({"result": "ok (imported from a bundle)"}, "imported", ""),
    ({"result": "ok"}, "ok", ""),
    (None, None, ""),
])
def test_attempts_read_from_state(stored: object, result: str | None, message: str) -> None:
    attempt = Attempt.from_json(stored)
    assert (attempt.result, attempt.message) == (result, message)
    assert attempt.failed == (result in ("failed", "refused"))


def test_round_trip_and_messages_are_bounded() -> None:
    attempt = Attempt.now("failed", "x" * 10_000)
    again = Attempt.from_json(attempt.to_json())
    assert again.result == "failed" and len(again.message) == 2000 and again.at == attempt.at


def test_status_exit_code_stale_wins_over_a_failed_sync() -> None:
    fresh_ok = AssetStatus("db", "aquasec/trivy-db:2", state="fresh", last_result="ok")
    fresh_failed = AssetStatus("java-db", "aquasec/trivy-java-db:1", state="fresh", last_result="failed")
    imported = AssetStatus("vex", "vex/vexhub", state="fresh", last_result="imported")
    stale = AssetStatus("checks", "aquasec/trivy-checks:2", state="stale", last_result="ok")
    assert exit_code([fresh_ok, imported]) == 0
    assert exit_code([fresh_ok, fresh_failed]) == 4
    assert exit_code([fresh_failed, stale]) == 3


def test_a_bounded_history_is_kept_newest_first() -> None:
    state: dict[str, object] = {"history": {"2": "not a list"}}
    assert attempt_history(state, "2") == ()  # state written before histories were kept, or damaged
    for n in range(HISTORY + 5):
        state = with_attempt(state, "2", Attempt.now("failed" if n % 2 else "ok", f"attempt {n}"))
    history = attempt_history(json.loads(json.dumps(state)), "2")
    assert [a.message for a in history] == [f"attempt {n}" for n in range(HISTORY + 4, 4, -1)]
    assert last_attempt(state, "2") == history[0]
    assert attempt_history(state, "1") == ()


def test_a_vex_repository_keeps_its_history() -> None:
    state = VexState("vexhub")
    for n in range(HISTORY + 2):
        state = state.with_attempt(Attempt.now("ok", f"check {n}"))
    again = VexState.from_json("vexhub", json.loads(json.dumps(state.to_json())))
    assert len(again.history) == HISTORY and again.history[0] == again.attempt
    assert again.history[-1].message == "check 2"
