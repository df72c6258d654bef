"""Prefect 3 docs, "Transactions" (write a file, test it, roll back): the doc's code with
``prefect`` → ``flowyard`` in imports, run in a temporary folder."""

from __future__ import annotations

import os

import pytest

from flowyard import flow, task
from flowyard.transactions import transaction


@task
def write_file(contents: str):
    "Writes to a file."
    with open("side-effect.txt", "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(transaction):
    "Deletes file."
    os.unlink("side-effect.txt")


@task
def quality_test():
    "Checks contents of file."
    with open("side-effect.txt") as f:
        data = f.readlines()

    if len(data) < 2:
        raise ValueError("Not enough data!")


@flow
def pipeline(contents: str):
    with transaction():
        write_file(contents)
        quality_test()


def test_a_failed_quality_test_deletes_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="Not enough data!"):
        pipeline(contents="hello world")
    assert not (tmp_path / "side-effect.txt").exists()


def test_good_data_keeps_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipeline(contents="hello\nworld\n")
    assert (tmp_path / "side-effect.txt").read_text() == "hello\nworld\n"
