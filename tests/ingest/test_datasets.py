"""Tests for the dataset catalogue, data-folder resolution and verified downloads.

A local `http.server` on 127.0.0.1 serves the downloads from a temporary folder. Each test fills
that folder from the shared data folder, laid out the way the dataset's primary source serves
it: a zip inside a zip for C-MAPSS, a zip for AI4I 2020 and single files otherwise.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import os
import shutil
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest import datasets
from ingest.datasets import (
    AI4I2020,
    BRANDIMARTE,
    CATALOGUE,
    CMAPSS,
    DATA_DIR_ENV,
    JSPLIB,
    ChecksumError,
    Dataset,
    DatasetNotFoundError,
    DownloadError,
    Source,
    dataset_path,
    fetch_datasets,
    resolve_data_dir,
    verify_data_dir,
)

pytestmark = pytest.mark.timeout(120)


def _shared_data_dir() -> Path:
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


# Read once at import, before any test changes the environment.
SHARED_DATA = _shared_data_dir()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data folder {SHARED_DATA} not found; set {DATA_DIR_ENV} to a folder laid "
            "out like it"
        )
    absent = [
        data_file.path
        for dataset in CATALOGUE
        for data_file in dataset.files
        if not (SHARED_DATA / data_file.path).is_file()
    ]
    if absent:
        pytest.skip(f"shared data folder {SHARED_DATA} lacks {', '.join(absent)}")
    return SHARED_DATA


# --- Local mirror --------------------------------------------------------------------------------


@dataclass
class Mirror:
    root: Path
    base_url: str
    requests: list[str]
    # URL path -> number of 503 responses to send before serving the file.
    unavailable: dict[str, int]

    def folder(self, dataset: Dataset) -> Path:
        return self.root / dataset.name

    def base_urls(self, *selected: Dataset) -> dict[str, str]:
        return {dataset.name: f"{self.base_url}/{dataset.name}" for dataset in selected}

    def requests_for(self, dataset: Dataset) -> list[str]:
        return [path for path in self.requests if path.startswith(f"/{dataset.name}/")]


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[str] = []
    unavailable: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            with lock:
                requests.append(self.path)
                refuse = unavailable.get(self.path, 0) > 0
                if refuse:
                    unavailable[self.path] -= 1
            if refuse:
                self.send_error(503, "Service Unavailable")
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", requests, unavailable)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def build_zip(entries: Mapping[tuple[str, ...], bytes]) -> bytes:
    """Build a zip whose member chains (outer name first) hold the given bytes."""
    nested: dict[str, dict[tuple[str, ...], bytes]] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for chain, content in entries.items():
            if len(chain) == 1:
                archive.writestr(chain[0], content)
            else:
                nested.setdefault(chain[0], {})[chain[1:]] = content
        for name, inner in nested.items():
            archive.writestr(name, build_zip(inner))
    return buffer.getvalue()


def upstream_instances_json(entries: list[dict[str, object]]) -> bytes:
    """Write instances.json the way JSPLIB does, with entries the catalogue does not keep."""
    extra: list[dict[str, object]] = [
        {"name": "abz5", "jobs": 10, "machines": 10, "optimum": 1234, "path": "instances/abz5"},
        {
            "name": "abz8",
            "jobs": 20,
            "machines": 15,
            "optimum": None,
            "bounds": {"upper": 665, "lower": 645},
            "path": "instances/abz8",
        },
    ]
    text = json.dumps(extra + entries, indent=2, separators=(",", " : "))
    return (text + "\n").encode()


def lay_out_primary_source(dataset: Dataset, shared: Path, folder: Path) -> None:
    """Write what the dataset's primary source serves under ``folder``, built from ``shared``."""
    for download in dataset.sources[0].downloads:
        destination = folder / urllib.parse.unquote(download.remote_path)
        destination.parent.mkdir(parents=True, exist_ok=True)

        if any(extract.member for extract in download.extracts):
            entries = {
                extract.member: (shared / extract.target).read_bytes()
                for extract in download.extracts
            }
            destination.write_bytes(build_zip(entries))
            continue

        (extract,) = download.extracts
        if extract.derive == "jsplib_subset":
            entries_kept = json.loads((shared / extract.target).read_text())
            destination.write_bytes(upstream_instances_json(entries_kept))
        else:
            shutil.copyfile(shared / extract.target, destination)


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- Catalogue -----------------------------------------------------------------------------------


def test_catalogue_sources_cover_every_file() -> None:
    for dataset in CATALOGUE:
        paths = [data_file.path for data_file in dataset.files]
        assert len(paths) == len(set(paths)), dataset.name
        assert dataset.sources, dataset.name

        for source in dataset.sources:
            targets = [
                extract.target for download in source.downloads for extract in download.extracts
            ]
            assert sorted(targets) == sorted(paths), (dataset.name, source.base_url)
            assert source.base_url.startswith("https://"), source.base_url


def test_catalogue_entries_are_well_formed() -> None:
    for dataset in CATALOGUE:
        assert dataset.licence
        assert dataset.citation
        assert dataset.homepage.startswith("https://")
        for data_file in dataset.files:
            assert data_file.path.startswith(f"{dataset.folder}/"), data_file.path
            assert len(data_file.sha256) == 64, data_file.path
            assert set(data_file.sha256) <= set("0123456789abcdef"), data_file.path


def test_catalogue_lists_the_expected_files() -> None:
    assert [dataset.name for dataset in CATALOGUE] == [
        "cmapss",
        "ai4i2020",
        "brandimarte",
        "jsplib",
    ]
    assert len(CMAPSS.files) == 4
    assert [data_file.path for data_file in AI4I2020.files] == ["ai4i2020/ai4i2020.csv"]
    assert [data_file.path for data_file in BRANDIMARTE.files] == [
        f"fjsp/brandimarte/mk0{number}.fjs" for number in range(1, 6)
    ]
    assert len(JSPLIB.files) == 24
    assert JSPLIB.files[0].path == "jsplib/instances.json"


def test_shared_copies_match_catalogue(shared_data: Path) -> None:
    assert verify_data_dir(shared_data) == []


# --- Fetching ------------------------------------------------------------------------------------


def test_fetch_all_from_local_mirror(
    shared_data: Path, mirror: Mirror, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for dataset in CATALOGUE:
        lay_out_primary_source(dataset, shared_data, mirror.folder(dataset))
    dest = tmp_path / "data"

    with caplog.at_level(logging.INFO, logger="ingest.datasets"):
        fetched = fetch_datasets(dest, base_url_override=mirror.base_urls(*CATALOGUE))

    expected_paths = [data_file.path for dataset in CATALOGUE for data_file in dataset.files]
    assert [item.relative_path for item in fetched] == expected_paths
    for item in fetched:
        assert item.status == "downloaded", item.relative_path
        assert item.path == dest / item.relative_path
        assert sha256_of(item.path) == item.sha256, item.relative_path
        assert item.path.read_bytes() == (shared_data / item.relative_path).read_bytes()
        assert item.source_url is not None
        assert item.source_url.startswith(f"{mirror.base_url}/"), item.source_url
        assert item.licence == datasets.get_dataset(item.dataset).licence

    assert verify_data_dir(dest) == []
    assert files_under(dest) == set(expected_paths)
    for dataset in CATALOGUE:
        assert dataset.licence in caplog.text


def test_fetch_downloads_zip_once(shared_data: Path, mirror: Mirror, tmp_path: Path) -> None:
    lay_out_primary_source(CMAPSS, shared_data, mirror.folder(CMAPSS))

    fetched = fetch_datasets(
        tmp_path / "data", ["cmapss"], mirror.base_urls(CMAPSS), progress=False
    )

    assert [item.status for item in fetched] == ["downloaded"] * 4
    assert mirror.requests_for(CMAPSS) == [
        "/cmapss/6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"
    ]


def test_fetch_finds_zip_members_in_another_folder(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    inner = {
        ("CMAPSSData", name): (shared_data / "cmapss" / name).read_bytes()
        for name in ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt", "readme.txt")
    }
    inner_zip = build_zip({("/".join(chain),): content for chain, content in inner.items()})
    outer_zip = build_zip(
        {
            ("wrapper/CMAPSSData.zip",): inner_zip,
            ("__MACOSX/wrapper/._CMAPSSData.zip",): b"resource fork, not a zip",
        }
    )
    archive = mirror.folder(CMAPSS) / "6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(outer_zip)
    dest = tmp_path / "data"

    fetch_datasets(dest, ["cmapss"], mirror.base_urls(CMAPSS), progress=False)

    assert verify_data_dir(dest, ["cmapss"]) == []


def test_fetch_skips_files_already_present(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    lay_out_primary_source(JSPLIB, shared_data, mirror.folder(JSPLIB))
    dest = tmp_path / "data"
    present = ["jsplib/instances.json", "jsplib/instances/ft06", "jsplib/instances/la01"]
    for relative_path in present:
        (dest / relative_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / relative_path, dest / relative_path)

    fetched = fetch_datasets(dest, ["jsplib"], mirror.base_urls(JSPLIB), progress=False)

    statuses = {item.relative_path: item.status for item in fetched}
    for relative_path in present:
        assert statuses[relative_path] == "already present"
    assert sum(status == "downloaded" for status in statuses.values()) == 21
    requested = mirror.requests_for(JSPLIB)
    assert len(requested) == 21
    assert "/jsplib/instances.json" not in requested
    assert "/jsplib/instances/ft06" not in requested
    assert "/jsplib/instances/la01" not in requested
    assert "/jsplib/instances/la02" in requested


def test_second_fetch_makes_no_requests(shared_data: Path, mirror: Mirror, tmp_path: Path) -> None:
    for dataset in (CMAPSS, BRANDIMARTE):
        lay_out_primary_source(dataset, shared_data, mirror.folder(dataset))
    dest = tmp_path / "data"
    overrides = mirror.base_urls(CMAPSS, BRANDIMARTE)
    fetch_datasets(dest, ["cmapss", "brandimarte"], overrides, progress=False)
    first_run_requests = len(mirror.requests)

    fetched = fetch_datasets(dest, ["cmapss", "brandimarte"], overrides, progress=False)

    assert first_run_requests == 6
    assert len(mirror.requests) == first_run_requests
    assert {item.status for item in fetched} == {"already present"}
    assert all(item.source_url is None for item in fetched)


def test_corrupted_download_raises_checksum_error(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    lay_out_primary_source(BRANDIMARTE, shared_data, mirror.folder(BRANDIMARTE))
    corrupted = mirror.folder(BRANDIMARTE) / "Mk03.fjs"
    corrupted.write_bytes(corrupted.read_bytes() + b"9 9 9\r\n")
    corrupted_sha = sha256_of(corrupted)
    dest = tmp_path / "data"

    with pytest.raises(ChecksumError) as caught:
        fetch_datasets(dest, ["brandimarte"], mirror.base_urls(BRANDIMARTE), progress=False)

    error = caught.value
    message = str(error)
    assert error.relative_path == "fjsp/brandimarte/mk03.fjs"
    assert error.expected == "8bb29792d8c8eead88af4144104815fba6e992006fc907ada3f1f638b1a24b11"
    assert error.actual == corrupted_sha
    assert error.source_url.endswith("/brandimarte/Mk03.fjs")
    assert "fjsp/brandimarte/mk03.fjs" in message
    assert error.expected in message
    assert corrupted_sha in message
    assert "plantpulse data fetch" in message
    assert not (dest / "fjsp/brandimarte/mk03.fjs").exists()
    assert files_under(dest) == {
        "fjsp/brandimarte/mk01.fjs",
        "fjsp/brandimarte/mk02.fjs",
        "fjsp/brandimarte/mk04.fjs",
        "fjsp/brandimarte/mk05.fjs",
    }
    assert [path.name for path in dest.iterdir()] == ["fjsp"]


def test_corrupted_zip_member_raises_checksum_error(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    csv = (shared_data / "ai4i2020" / "ai4i2020.csv").read_bytes()
    archive = mirror.folder(AI4I2020) / "ai4i+2020+predictive+maintenance+dataset.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(build_zip({("ai4i2020.csv",): csv.replace(b",M,", b",L,", 1)}))
    dest = tmp_path / "data"

    with pytest.raises(ChecksumError, match=r"ai4i2020/ai4i2020\.csv") as caught:
        fetch_datasets(dest, ["ai4i2020"], mirror.base_urls(AI4I2020), progress=False)

    assert caught.value.expected == AI4I2020.files[0].sha256
    assert not (dest / "ai4i2020" / "ai4i2020.csv").exists()
    assert files_under(dest) == set()


@pytest.mark.parametrize("damage", ["truncated", "bad member"])
def test_fetch_rejects_damaged_zip(
    shared_data: Path, mirror: Mirror, tmp_path: Path, damage: str
) -> None:
    csv = (shared_data / "ai4i2020" / "ai4i2020.csv").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("ai4i2020.csv", csv)
    content = buffer.getvalue()
    if damage == "truncated":
        content = content[: len(content) // 2]
    else:
        # Flip one byte of the stored member, so its CRC-32 no longer matches.
        offset = content.index(b"UDI,Product ID")
        content = content[:offset] + b"X" + content[offset + 1 :]
    archive_path = mirror.folder(AI4I2020) / "ai4i+2020+predictive+maintenance+dataset.zip"
    archive_path.parent.mkdir(parents=True)
    archive_path.write_bytes(content)
    dest = tmp_path / "data"

    with pytest.raises(DownloadError, match=r"ai4i\+2020\+predictive\+maintenance\+dataset\.zip"):
        fetch_datasets(dest, ["ai4i2020"], mirror.base_urls(AI4I2020), progress=False)

    assert files_under(dest) == set()


def test_fetch_rejects_damaged_nested_zip(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    inner = build_zip({("readme.txt",): (shared_data / "cmapss" / "readme.txt").read_bytes()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(datasets._CMAPSS_S3_INNER_ZIP, inner)
    content = bytearray(buffer.getvalue())
    # Flip one byte inside the stored inner zip, so the outer member's CRC-32 no longer matches.
    content[content.index(b"PK\x03\x04", 4) + 40] ^= 0xFF
    archive_path = mirror.folder(CMAPSS) / "6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"
    archive_path.parent.mkdir(parents=True)
    archive_path.write_bytes(bytes(content))
    dest = tmp_path / "data"

    with pytest.raises(DownloadError, match="is damaged"):
        fetch_datasets(dest, ["cmapss"], mirror.base_urls(CMAPSS), progress=False)

    assert files_under(dest) == set()


def test_fetch_replaces_a_file_with_the_wrong_checksum(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    lay_out_primary_source(AI4I2020, shared_data, mirror.folder(AI4I2020))
    dest = tmp_path / "data"
    stale = dest / "ai4i2020" / "ai4i2020.csv"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"UDI,Product ID\n1,M14860\n")

    (fetched,) = fetch_datasets(dest, ["ai4i2020"], mirror.base_urls(AI4I2020), progress=False)

    assert fetched.status == "downloaded"
    assert stale.read_bytes() == (shared_data / "ai4i2020" / "ai4i2020.csv").read_bytes()


def test_fetch_raises_download_error_for_missing_remote_file(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    lay_out_primary_source(BRANDIMARTE, shared_data, mirror.folder(BRANDIMARTE))
    (mirror.folder(BRANDIMARTE) / "Mk02.fjs").unlink()
    dest = tmp_path / "data"

    with pytest.raises(DownloadError, match=r"/brandimarte/Mk02\.fjs failed with HTTP 404"):
        fetch_datasets(dest, ["brandimarte"], mirror.base_urls(BRANDIMARTE), progress=False)

    assert not (dest / "fjsp/brandimarte/mk02.fjs").exists()
    assert verify_data_dir(dest, ["brandimarte"])[0].kind == "missing"


def test_fetch_retries_after_server_error(
    shared_data: Path, mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lay_out_primary_source(BRANDIMARTE, shared_data, mirror.folder(BRANDIMARTE))
    mirror.unavailable["/brandimarte/Mk04.fjs"] = 1
    pauses: list[float] = []
    monkeypatch.setattr(datasets, "time", SimpleNamespace(sleep=pauses.append))
    dest = tmp_path / "data"

    fetched = fetch_datasets(dest, ["brandimarte"], mirror.base_urls(BRANDIMARTE), progress=False)

    assert [item.status for item in fetched] == ["downloaded"] * 5
    assert mirror.requests_for(BRANDIMARTE).count("/brandimarte/Mk04.fjs") == 2
    assert pauses == [1]
    assert verify_data_dir(dest, ["brandimarte"]) == []


def two_source_dataset(mirror: Mirror) -> Dataset:
    """BRANDIMARTE served by two local sources, named "first" and "second"."""
    downloads = BRANDIMARTE.sources[0].downloads
    return replace(
        BRANDIMARTE,
        sources=(
            Source(f"{mirror.base_url}/first", downloads),
            Source(f"{mirror.base_url}/second", downloads),
        ),
    )


def test_fetch_falls_back_to_next_source(
    shared_data: Path, mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("first", "second"):
        lay_out_primary_source(BRANDIMARTE, shared_data, mirror.root / folder)
    (mirror.root / "first" / "Mk02.fjs").write_bytes(b"10 6\r\n")
    (mirror.root / "first" / "Mk05.fjs").unlink()
    monkeypatch.setattr(datasets, "CATALOGUE", (two_source_dataset(mirror),))
    dest = tmp_path / "data"

    fetched = fetch_datasets(dest, ["brandimarte"], progress=False)

    sources = {item.relative_path: item.source_url for item in fetched}
    assert sources["fjsp/brandimarte/mk01.fjs"] == f"{mirror.base_url}/first/Mk01.fjs"
    assert sources["fjsp/brandimarte/mk02.fjs"] == f"{mirror.base_url}/second/Mk02.fjs"
    assert sources["fjsp/brandimarte/mk05.fjs"] == f"{mirror.base_url}/second/Mk05.fjs"
    assert [path for path in mirror.requests if path.startswith("/second/")] == [
        "/second/Mk02.fjs",
        "/second/Mk05.fjs",
    ]
    assert verify_data_dir(dest, ["brandimarte"]) == []


def test_fetch_reports_checksum_error_over_download_error(
    shared_data: Path, mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("first", "second"):
        lay_out_primary_source(BRANDIMARTE, shared_data, mirror.root / folder)
    (mirror.root / "first" / "Mk01.fjs").write_bytes(b"10 6\r\n")
    (mirror.root / "second" / "Mk01.fjs").unlink()
    monkeypatch.setattr(datasets, "CATALOGUE", (two_source_dataset(mirror),))

    with pytest.raises(ChecksumError) as caught:
        fetch_datasets(tmp_path / "data", ["brandimarte"], progress=False)

    assert caught.value.source_url == f"{mirror.base_url}/first/Mk01.fjs"
    assert caught.value.actual == hashlib.sha256(b"10 6\r\n").hexdigest()


def test_fetch_rejects_jsplib_index_without_an_instance(
    shared_data: Path, mirror: Mirror, tmp_path: Path
) -> None:
    lay_out_primary_source(JSPLIB, shared_data, mirror.folder(JSPLIB))
    entries = json.loads((shared_data / "jsplib" / "instances.json").read_text())
    without_la20 = [entry for entry in entries if entry["name"] != "la20"]
    (mirror.folder(JSPLIB) / "instances.json").write_bytes(upstream_instances_json(without_la20))
    dest = tmp_path / "data"

    with pytest.raises(DownloadError, match="no entry for la20"):
        fetch_datasets(dest, ["jsplib"], mirror.base_urls(JSPLIB), progress=False)

    assert not (dest / "jsplib" / "instances.json").exists()


def test_fetch_rejects_unknown_dataset_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        fetch_datasets(tmp_path, ["nope"], progress=False)
    with pytest.raises(ValueError, match="base_url_override names unknown datasets nope"):
        fetch_datasets(tmp_path, ["cmapss"], {"nope": "http://127.0.0.1:9"}, progress=False)
    with pytest.raises(TypeError, match="not a single string"):
        fetch_datasets(tmp_path, "cmapss", progress=False)


def test_fetch_rejects_unsupported_url_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scheme must be one of"):
        fetch_datasets(tmp_path, ["cmapss"], {"cmapss": "ftp://127.0.0.1/data"}, progress=False)


# --- Verifying a folder --------------------------------------------------------------------------


def test_verify_data_dir_reports_missing_and_mismatched(shared_data: Path, tmp_path: Path) -> None:
    shutil.copytree(shared_data / "cmapss", tmp_path / "cmapss")
    (tmp_path / "cmapss" / "RUL_FD001.txt").unlink()
    (tmp_path / "cmapss" / "readme.txt").write_bytes(b"edited\n")

    problems = verify_data_dir(tmp_path, ["cmapss"])

    assert [(problem.relative_path, problem.kind) for problem in problems] == [
        ("cmapss/RUL_FD001.txt", "missing"),
        ("cmapss/readme.txt", "checksum mismatch"),
    ]
    assert problems[1].actual_sha256 == hashlib.sha256(b"edited\n").hexdigest()
    assert "expected SHA-256 4f5270554b775c67" in str(problems[1])


def test_verify_empty_folder_lists_all(tmp_path: Path) -> None:
    problems = verify_data_dir(tmp_path)

    assert len(problems) == sum(len(dataset.files) for dataset in CATALOGUE)
    assert {problem.kind for problem in problems} == {"missing"}


# --- Resolving the data folder -------------------------------------------------------------------


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder with no checkout above it, with the package outside any checkout."""
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(outside)
    monkeypatch.setattr(datasets, "_PACKAGE_DIR", outside)
    if any((folder / "pyproject.toml").is_file() for folder in (outside, *outside.parents)):
        pytest.skip(f"a pyproject.toml lies above the temporary folder {outside}")
    return outside


def make_checkout(root: Path) -> Path:
    """Create ``root/repo/pyproject.toml`` and ``root/shared/data``; return the repository."""
    repository = root / "repo"
    (repository / "pkg").mkdir(parents=True)
    (repository / "pyproject.toml").write_text("[project]\nname = 'example'\n")
    (root / "shared" / "data").mkdir(parents=True)
    return repository


def test_resolve_prefers_explicit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))

    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_resolve_uses_env_before_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = make_checkout(tmp_path)
    monkeypatch.chdir(repository)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))

    assert resolve_data_dir() == tmp_path / "from-env"


def test_resolve_ignores_empty_env(no_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_checkout / "cache"))

    assert resolve_data_dir() == no_checkout / "cache" / "plantpulse" / "data"


def test_resolve_finds_shared_data_above_cwd(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = make_checkout(no_checkout / "work")
    monkeypatch.chdir(repository / "pkg")

    assert resolve_data_dir() == no_checkout / "work" / "shared" / "data"


def test_resolve_finds_shared_data_beside_package(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = make_checkout(no_checkout / "work")
    monkeypatch.setattr(datasets, "_PACKAGE_DIR", repository / "pkg")

    assert resolve_data_dir() == no_checkout / "work" / "shared" / "data"


def test_resolve_skips_checkout_without_shared_data(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = make_checkout(no_checkout / "work")
    shutil.rmtree(no_checkout / "work" / "shared")
    monkeypatch.chdir(repository)
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_checkout / "cache"))

    assert resolve_data_dir() == no_checkout / "cache" / "plantpulse" / "data"


def test_resolve_falls_back_to_xdg_cache(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_checkout / "cache"))

    assert resolve_data_dir() == no_checkout / "cache" / "plantpulse" / "data"


def test_resolve_ignores_relative_xdg_cache(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(no_checkout / "home"))

    assert resolve_data_dir() == no_checkout / "home" / ".cache" / "plantpulse" / "data"


# --- Paths of dataset files ----------------------------------------------------------------------


def test_dataset_path_returns_file_in_data_dir(shared_data: Path) -> None:
    path = dataset_path("cmapss", "train_FD001.txt", data_dir=shared_data)

    assert path == shared_data / "cmapss" / "train_FD001.txt"


def test_dataset_path_uses_env_data_dir(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data))

    assert dataset_path("jsplib", "instances/ft06") == shared_data / "jsplib" / "instances" / "ft06"
    assert (
        dataset_path("brandimarte", "mk01.fjs") == shared_data / "fjsp" / "brandimarte" / "mk01.fjs"
    )


def test_dataset_path_missing_file_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))

    with pytest.raises(DatasetNotFoundError) as caught:
        dataset_path("cmapss", "train_FD001.txt")

    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "cmapss/train_FD001.txt" in message
    assert str(tmp_path) in message
    assert f"${DATA_DIR_ENV}" in message
    assert "plantpulse data fetch" in message


def test_dataset_path_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        dataset_path("nope", "x.txt", data_dir=tmp_path)
    with pytest.raises(ValueError, match="invalid path"):
        dataset_path("cmapss", "../ai4i2020/ai4i2020.csv", data_dir=tmp_path)
    with pytest.raises(ValueError, match="invalid path"):
        dataset_path("cmapss", "/etc/passwd", data_dir=tmp_path)
