"""A long-lived process follows its settings files (warm serving workers, the watcher)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from posguard.errors import ConfigError
from posguard.settings import LiveSettings

ACCOUNT = """
[accounts.main]
api_key = "k-{n}"
secret_key = "s"
passphrase = "p"
base_url = "http://127.0.0.1:1"
"""


def write(path: Path, grace: float, key: int = 1) -> None:
    path.write_text(f"[drift]\ngrace_seconds = {grace}\n" + ACCOUNT.format(n=key))


def age(path: Path, seconds: float = 10) -> None:
    """As if written `seconds` ago: past the window in which a file is compared by content."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def test_an_edited_file_takes_effect_at_the_next_read_and_an_unchanged_one_is_kept(
    tmp_path: Path,
) -> None:
    config = tmp_path / "posguard.toml"
    write(config, 5)
    age(config)
    live = LiveSettings(config)
    first = live.get()
    assert first.drift.grace_seconds == 5
    assert live.get() is first  # not read again

    write(config, 3, key=2)  # a rotated key and a new window
    changed = live.get()
    assert changed.drift.grace_seconds == 3
    assert changed.account("main").api_key.get_secret_value() == "k-2"


def test_a_second_write_with_the_same_size_within_the_clock_tick_is_seen(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    write(config, 5)
    live = LiveSettings(config)
    assert live.get().drift.grace_seconds == 5
    stamp = config.stat()
    write(config, 4)  # the same length
    os.utime(config, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # and the same time
    assert live.get().drift.grace_seconds == 4


def test_a_broken_edit_fails_every_read_naming_the_file_until_mended(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    write(config, 5)
    live = LiveSettings(config)
    live.get()
    config.write_text("[drift]\ngrace_seconds = -1\n" + ACCOUNT.format(n=1))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"posguard\.toml.*grace_seconds"):
            live.get()
    write(config, 2)
    assert live.get().drift.grace_seconds == 2


def test_the_accounts_file_is_followed_too(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("name,api_key,secret_key,passphrase\ndesk,a-1,s,p\n")
    config = tmp_path / "posguard.toml"
    config.write_text('accounts_file = "accounts.csv"\n')
    age(config)
    age(accounts)
    live = LiveSettings(config)
    assert live.get().account("desk").api_key.get_secret_value() == "a-1"
    accounts.write_text("name,api_key,secret_key,passphrase\ndesk,a-2,s,p\nbook,b,s,p\n")
    again = live.get()
    assert again.account("desk").api_key.get_secret_value() == "a-2"
    assert set(again.accounts) == {"desk", "book"}


def test_a_read_just_after_a_write_compares_content_until_the_file_is_older(
    tmp_path: Path,
) -> None:
    """The "racy" stamp: a write in the same clock tick as the one a read saw, with the same
    size, is still seen once the tick is long past (file systems with coarse times)."""
    config = tmp_path / "posguard.toml"
    write(config, 5)
    age(config)
    live = LiveSettings(config)
    assert live.get().drift.grace_seconds == 5
    write(config, 4)
    tick = config.stat().st_mtime_ns
    assert live.get().drift.grace_seconds == 4
    write(config, 3)
    os.utime(config, ns=(tick, tick))  # the same time and size as the write just read
    time.sleep(2.1)  # the tick is long past when the next read comes
    assert live.get().drift.grace_seconds == 3


def test_the_default_file_going_missing_fails_reads_instead_of_using_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSGUARD_CONFIG", raising=False)
    config = tmp_path / "posguard.toml"
    config.write_text(f'registry_url = "sqlite:///{tmp_path / "mine.db"}"\n' + ACCOUNT.format(n=1))
    live = LiveSettings()
    assert "mine.db" in live.get().registry_url
    aside = tmp_path / "posguard.toml~"
    config.rename(aside)  # an editor saving by renaming
    with pytest.raises(ConfigError, match="does not exist"):
        live.get()
    aside.rename(config)
    assert "mine.db" in live.get().registry_url
