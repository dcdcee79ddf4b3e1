"""Safe zip extraction: each refusal names the bad member, and nothing is left behind when extraction fails."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from mdmtune.data.archive import ZipLimits, safe_extract, single_root
from mdmtune.errors import InvalidInput


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_plain_tree_is_extracted_with_its_folders(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"ckpt/config.json": b"{}", "ckpt/sub/w.bin": b"1234"})
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "ckpt" / "config.json").read_bytes() == b"{}"
    assert (out / "ckpt" / "sub" / "w.bin").read_bytes() == b"1234"
    assert single_root(out) == out / "ckpt"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "C:/evil.txt", "a\\..\\b"])
def test_member_escaping_the_destination_is_refused_by_name(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"fine.txt": b"x", name: b"y"})
    with pytest.raises(InvalidInput, match="member") as caught:
        safe_extract(archive, tmp_path / "out")
    assert repr(name) in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("ckpt/model.safetensors")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidInput, match=r"'ckpt/model.safetensors' is a symlink"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_bomb_member_is_refused_by_compression_ratio(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"config.json": b"{}", "zeros.bin": bytes(16 * 1024 * 1024)})
    with pytest.raises(InvalidInput, match=r"'zeros.bin' has compression ratio"):
        safe_extract(archive, tmp_path / "out")


def test_total_uncompressed_size_over_the_limit_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", {"a": b"a" * 600, "b": b"b" * 600}, zipfile.ZIP_STORED)
    with pytest.raises(InvalidInput, match=r"more than 1000 bytes \(reached at member 'b'\)"):
        safe_extract(archive, tmp_path / "out", limits=ZipLimits(max_total_bytes=1000))


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(5)})
    with pytest.raises(InvalidInput, match="has 5 members"):
        safe_extract(archive, tmp_path / "out", limits=ZipLimits(max_members=4))


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("config.json", b"{}")
        archive.writestr("config.json", b"{}")
    with pytest.raises(InvalidInput, match=r"'config\.json' appears twice"):
        safe_extract(path, tmp_path / "out")


def test_failed_extraction_leaves_no_destination_and_no_staging_folder(tmp_path: Path) -> None:
    """A CRC error in the second member surfaces after the first was written: the staging folder must vanish."""
    path = _zip(tmp_path / "crc.zip", {"a.txt": b"A" * 100, "b.txt": b"B" * 100}, zipfile.ZIP_STORED)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"B" * 100, b"B" * 99 + b"C", 1))
    with pytest.raises(InvalidInput, match="corrupt zip"):
        safe_extract(path, tmp_path / "out" / "ckpt")
    assert list((tmp_path / "out").iterdir()) == []


def test_existing_destination_is_kept_only_with_exist_ok(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"a.txt": b"new"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        safe_extract(archive, tmp_path / "out")
    assert safe_extract(archive, tmp_path / "out", exist_ok=True) == tmp_path / "out"
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"old"


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InvalidInput, match=r"x\.zip is not a zip archive"):
        safe_extract(path, tmp_path / "out")


def test_many_members_just_under_the_ratio_threshold_are_refused_by_the_whole_archive_ratio(tmp_path: Path) -> None:
    """1,200 members of zeros, each 1 byte short of the per-member ratio check: 1.26 GB from ~1.3 MB."""
    member = bytes(ZipLimits().ratio_min_bytes - 1)
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n in range(1200):
            archive.writestr(f"part{n:04d}.bin", member)
    with pytest.raises(InvalidInput, match=r"ratio \d+, limit 200\): refused as a possible zip bomb"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ordinary_weights_pass_the_whole_archive_ratio(tmp_path: Path) -> None:
    import numpy as np

    weights = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32).tobytes()  # 1 MiB
    archive = _zip(tmp_path / "ok.zip", {"ck/config.json": b"{}" * 1000, "ck/model.safetensors": weights})
    assert (safe_extract(archive, tmp_path / "out") / "ck" / "model.safetensors").read_bytes() == weights


def test_single_root_follows_a_chain_of_lone_folders(tmp_path: Path) -> None:
    """`zip -r ck.zip examples/sudoku/checkpoint` stores examples/sudoku/checkpoint/<files>."""
    archive = _zip(tmp_path / "nested.zip", {"examples/sudoku/checkpoint/config.json": b"{}", "__MACOSX/x": b""})
    out = safe_extract(archive, tmp_path / "out")
    assert single_root(out) == out / "examples" / "sudoku" / "checkpoint"
    two = _zip(tmp_path / "two.zip", {"a/x/config.json": b"{}", "a/y/config.json": b"{}"})
    assert single_root(safe_extract(two, tmp_path / "out2")) == tmp_path / "out2" / "a"
