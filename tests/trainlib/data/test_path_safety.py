"""Every input that names files (archive label names and members, txt lists, classes.txt, folder
trees) stays inside the folder the user named: refused in one line otherwise, nothing written."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.data_files import write_cifar_release, write_class_tree
from trainlib.data.folder import read_tree
from trainlib.data.safe_paths import safe_name, unique_names
from trainlib.data.txtlist import read_list
from trainlib.errors import DataError

BAD_NAMES = ["../x", "..", ".", "", "/etc", "a/b", "a\\b", "nul\0byte", " padded", "../../../../tmp/escape"]
BAD_RELATIVE = ["../x.png", "/etc/passwd", "a/../../x.png", "~/x.png"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_one_plain_component_is_refused(name):
    with pytest.raises(DataError, match="cannot be a folder name"):
        safe_name(name, "labels")


def test_plain_names_pass_and_duplicates_do_not():
    assert unique_names(["cat", "dog", "big truck", "ünïcode"], "labels") == ["cat", "dog", "big truck", "ünïcode"]
    with pytest.raises(DataError, match="appears twice"):
        unique_names(["cat", "cat"], "labels")


@pytest.mark.parametrize("relative", BAD_RELATIVE)
def test_a_txt_list_is_the_users_own_input_only_an_unreadable_path_is_refused(relative, tmp_path, monkeypatch):
    """A list writes nothing: a path outside its folder is read when it names a readable file."""
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.chdir(lists)
    (lists / "l.txt").write_text(f"{relative} 0\n")
    target = Path(relative).expanduser()
    readable = target.is_absolute() and target.is_file()  # /etc/passwd
    if readable:
        assert read_list(lists / "l.txt")[0].paths == [target]
    else:
        with pytest.raises(DataError, match=rf"l\.txt:1: image '{relative}' not found or not readable"):
            read_list(lists / "l.txt")


def test_classes_txt_with_a_climbing_name_is_refused(tmp_path):
    root = tmp_path / "tree"
    for split in ("train", "valid", "test"):
        write_class_tree(root / split, {"a": 1})
    (root / "classes.txt").write_text("a\n../../outside\n")
    with pytest.raises(DataError, match="'../../outside'"):
        read_tree(root)


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def test_archive_members_are_read_never_extracted(tmp_path):
    """Members named ../.. , absolute members, symlinks and hard links in the archive write nothing."""
    release = write_cifar_release(tmp_path / "src")
    archive = tmp_path / "work" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        add_bytes(tar, "../../climbed.txt", b"x")
        add_bytes(tar, "/tmp/launch-absolute-member.txt", b"x")
        add_bytes(tar, "cifar-10-batches-py/link", b"", tarfile.SYMTYPE, "/etc/passwd")
        add_bytes(tar, "cifar-10-batches-py/hard", b"", tarfile.LNKTYPE, "/etc/passwd")
        tar.add(release, arcname="cifar-10-batches-py")
    out = tmp_path / "work" / "out"
    before = {p for p in tmp_path.rglob("*")}
    result = CliRunner().invoke(main, ["data", "cifar10", str(archive), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output + result.stderr
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == out or out in p.parents for p in created)
    assert not Path("/tmp/launch-absolute-member.txt").exists() and not (tmp_path.parent / "climbed.txt").exists()
    assert not list(out.rglob("link")) and not list(out.rglob("hard"))


def test_split_writes_only_inside_out(tmp_path):
    source = write_class_tree(tmp_path / "src", {"a": 5, "b": 5})
    out = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*")}
    result = CliRunner().invoke(main, ["data", "split", str(source), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output + result.stderr
    assert all(p == out or out in p.parents for p in {p for p in tmp_path.rglob("*")} - before)
