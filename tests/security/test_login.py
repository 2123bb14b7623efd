"""Items 3 and 11 of the review, and issue 11 item 10: password checks and the htpasswd file.

Replayed: 40 connections sending wrong passwords used to fill the bcrypt queue so real first logins got 429;
deleting the htpasswd file kept the last copy in force without a word; a file without bcrypt entries started
a server that refused everyone.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.serve import ServeProcess

from .conftest import (
    AUDITOR,
    AUDITOR_PASSWORD,
    ROBOT,
    ROBOT_PASSWORD,
    SCANNER,
    SCANNER_PASSWORD,
    Served,
    basic,
    write_htpasswd,
)

pytestmark = pytest.mark.security
FLOOD = 40


def test_a_wrong_password_flood_does_not_lock_out_real_users(served: Served) -> None:
    assert served.request("GET", "/v2/", headers={"Authorization": basic(ROBOT, ROBOT_PASSWORD)})[0] == 200

    def attack(number: int) -> int:
        return served.request("GET", "/v2/", headers={"Authorization": basic(SCANNER, f"guess-{number}")})[0]

    def first_login() -> tuple[int, float]:
        time.sleep(0.05)  # while the flood is queued
        started = time.monotonic()
        status = served.request("GET", "/v2/", headers={"Authorization": basic(AUDITOR, AUDITOR_PASSWORD)},
                                source="127.0.0.2")[0]
        return status, time.monotonic() - started

    def known_good() -> int:
        time.sleep(0.05)
        return served.request("GET", "/v2/", headers={"Authorization": basic(ROBOT, ROBOT_PASSWORD)})[0]

    started = time.monotonic()
    with ThreadPoolExecutor(FLOOD + 2) as pool:
        flood = [pool.submit(attack, n) for n in range(FLOOD)]
        login, cached = pool.submit(first_login), pool.submit(known_good)
        statuses = [future.result() for future in flood]
        login_status, login_seconds = login.result()
        cached_status = cached.result()
    elapsed = time.monotonic() - started
    assert login_status == 200 and cached_status == 200
    # The flood's bcrypt work is bounded per address (4 at a time): most of it is refused at once.
    assert set(statuses) <= {401, 429} and statuses.count(429) >= FLOOD // 2, statuses
    assert login_seconds < 3 and elapsed < 10, (login_seconds, elapsed)
    # The same wrong password again is answered from memory: no bcrypt, never a 429.
    again = [served.request("GET", "/v2/", headers={"Authorization": basic(SCANNER, "guess-0")})[0]
             for _ in range(20)]
    assert again == [401] * 20
    print(f"\nflood of {FLOOD}: {statuses.count(429)} x 429, {statuses.count(401)} x 401; first login from "
          f"another address {login_seconds:.2f} s; known-good 200")


def test_a_deleted_htpasswd_is_logged_once_and_shown_in_readyz(tmp_path: Path, synced_store: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {SCANNER: SCANNER_PASSWORD}, cost=5)
    with ServeProcess(MirrorCli(tmp_path / "home"), ["--store", str(synced_store), "--no-sync", "--assets", "db",
                                                     "--htpasswd", str(htpasswd)]) as server:
        auth = {"Authorization": basic(SCANNER, SCANNER_PASSWORD)}
        assert server.get("/v2/", auth)[0] == 200
        htpasswd.unlink()
        for _ in range(4):
            time.sleep(0.6)
            assert server.get("/v2/", auth)[0] == 200  # the last good copy stays in force
        errors = [line for line in server.log().splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "is missing" in errors[0], server.log()
        status, body = server.get("/readyz", auth)
        assert status == 200
        assert json.loads(body)["credentials"] == ["the htpasswd file is missing; the last good version stays "
                                                   "in force"]
        assert "credentials" not in json.loads(server.get("/readyz")[1])  # not for anonymous probes


def test_an_htpasswd_without_bcrypt_is_refused_at_start(tmp_path: Path, mirror: MirrorCli) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("# made with htpasswd -b (MD5)\nscanner:$apr1$xyz$0123456789abcdefghijkl\n")
    result = mirror.run(["serve", "--store", str(tmp_path / "store"), "--no-sync", "--htpasswd", str(htpasswd)],
                        timeout=30)
    line = assert_one_error_line(result, 2)
    assert "line 2 is not a bcrypt entry" in line and "htpasswd -B" in line and "$apr1$" not in result.stderr


def test_password_stdin_keeps_the_password_out_of_the_command_line(served: Served, mirror: MirrorCli) -> None:
    args = ["status", "--to", f"127.0.0.1:{served.port}", "--assets", "db", "--dest-creds", SCANNER,
            "--dest-password-stdin"]
    ok = mirror.run(args, input=f"{SCANNER_PASSWORD}\n", timeout=60)
    assert ok.returncode == 0, ok.stderr
    wrong = mirror.run(args, input="not-the-password\n", timeout=60)
    assert wrong.returncode != 0 and "not-the-password" not in wrong.stderr
