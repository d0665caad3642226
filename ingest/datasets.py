"""Catalogue of the public datasets, the data folder that contains them, and verified downloads.

PlantPulse reads its datasets in place from one data folder laid out as::

    cmapss/train_FD001.txt, test_FD001.txt, RUL_FD001.txt, readme.txt
    ai4i2020/ai4i2020.csv
    fjsp/brandimarte/mk01.fjs ... mk05.fjs
    jsplib/instances.json, jsplib/instances/ft06, ft10, ft20, la01 ... la20

`resolve_data_dir` finds that folder, `dataset_path` returns one file in it, `fetch_datasets`
fills it from the public sources and checks the SHA-256 of every file, and `verify_data_dir`
checks a folder that already exists.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from tqdm import tqdm

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "PLANTPULSE_DATA_DIR"

# Passed to urlopen, so it bounds the connect and each read, not the whole download.
DOWNLOAD_TIMEOUT_S = 60.0

_DOWNLOAD_ATTEMPTS = 3
_CHUNK_BYTES = 1 << 20
_USER_AGENT = "plantpulse-data-fetch/0.1"
_ALLOWED_SCHEMES = ("https", "http", "file")
_PACKAGE_DIR = Path(__file__).resolve().parent


# --- Catalogue types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its POSIX path inside the data folder and its SHA-256 (hex)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Extract:
    """A data file taken from one download.

    ``member`` is the chain of zip member names that leads to the file: empty when the download
    is the file itself, one name for a member of a zip, two for a member of a zip inside a zip.
    A member is matched by its full name first and by its last path component otherwise, so a
    mirror that wraps the files in another folder still works. ``derive`` names an entry of
    `_DERIVATIONS` that turns the extracted bytes into the data file.
    """

    target: str
    member: tuple[str, ...] = ()
    derive: str | None = None


@dataclass(frozen=True)
class Download:
    """One URL below a source's base URL (percent-encoded as sent) and the files it yields."""

    remote_path: str
    extracts: tuple[Extract, ...]


@dataclass(frozen=True)
class Source:
    """A public location that serves a whole dataset."""

    base_url: str
    downloads: tuple[Download, ...]

    def url_for(self, download: Download) -> str:
        """Join the base URL and a download's remote path."""
        return f"{self.base_url.rstrip('/')}/{download.remote_path.lstrip('/')}"


@dataclass(frozen=True)
class Dataset:
    """A public dataset: where it lives in the data folder, its terms and its sources.

    ``sources`` are tried in order for the files still missing, and the first is the primary.
    """

    name: str
    title: str
    folder: str
    licence: str
    citation: str
    homepage: str
    files: tuple[DataFile, ...]
    sources: tuple[Source, ...]


def _direct(remote_path: str, target: str) -> Download:
    return Download(remote_path, (Extract(target),))


# --- The catalogue -------------------------------------------------------------------------------
#
# Every SHA-256 below is that of the file as the product stores it. Which source addresses were
# confirmed in public material (other projects' code and docs), and which were not, is noted at
# each source. No address was fetched from the machine that wrote this catalogue.

_CMAPSS_FILES = ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt", "readme.txt")

# The PHM Society bucket serves a zip whose folder contains a second zip with the text files.
_CMAPSS_S3_INNER_ZIP = "6. Turbofan Engine Degradation Simulation Data Set/CMAPSSData.zip"

_JSPLIB_INSTANCES = {
    "ft06": "fee212360082ab31d7a6f375e352dad79973e17e70da40d14fcce5400a721a1c",
    "ft10": "eff0a40841b2160661f64bfc94c77a3d02d3dcfdfab9c02bf39f7da1153891b7",
    "ft20": "5702cbc10318b52ad728ee94ed6fb862387008246cebb5d9cf9661f41f3ca7a9",
    "la01": "37a1de180c912680b8a6ea4c7c86f5e273c79b47ba55720c824b1fd93d3457bc",
    "la02": "dc608b07a2ce9f3e1991532d219461733c40a9265579f2d5207f232dfd7c3080",
    "la03": "80d0b6b1fd833ed52999ad3cc530730fe47c3ee5b6ed1639b3b20ba0b1141190",
    "la04": "7e012cda44a4f546eeffa975eefb03ca84e759a1098d6afc79aeda56ef5976df",
    "la05": "e5c6b7dd42a07743704f700985d7ab214649a67455305145e0acfbda63ab4695",
    "la06": "5b717141d149fe65a1957c7c7637eb486e54ee52faf5a4487ae08bdcf4398c7b",
    "la07": "38ccd5252f16aada8d4aa6d987e7d042282c538cc88aa7960f6072fb3b4cf39c",
    "la08": "e3a7d29d328cdfa2d7b256f8f6b3d9e4934848b389c0437d5b029920dc3cff75",
    "la09": "0c1730baa9e9480efff7d062d5af5758f056a5889326d877bc7d5b43d71a2cc4",
    "la10": "52b5fb10389ca6f5aecc968354febf934ef13178df145eeccc1a200a73779de6",
    "la11": "9cc1593347a2b69fc0936089b4442cd9702f81d8e833968177fe050f19a5c97f",
    "la12": "09ee87443279a807d3967d877b72188a4749c25f1cb41c593b512ecea6532799",
    "la13": "c1f9eb832d4b83d9d9360f2e50ba760568bfe763af2dbf7fd4de5db8da6e2f0d",
    "la14": "53e7a9aa056953a6b85c875e43550c2a201f161d71b2fec1299468024b550e77",
    "la15": "296fa0658d6bfe622576bda15ea92ed05374c135bc4152e2a3ede2161d690e3c",
    "la16": "30b4c4ef875c9847ea29bd6c42a2ba58f7e7bda58c3d7736a6efd4df58669483",
    "la17": "a7f95f12b59e4613b9c7153254cd4a51670c66ffcd1cbf0e39e8cbd57b68f891",
    "la18": "9a76ed95d087eb8a219ed4ffdb6318f0e4ec898500452bbe2f61b1e1ba4f53e6",
    "la19": "63c37ac8da8f9a2a5cd8df8033e947a50155b860426b9e1612223ab2dbe1648d",
    "la20": "13bf9bf4668e7bff2dcc1caa095d9280a3607a1b4004d25514110192ffba18eb",
}

_BRANDIMARTE_INSTANCES = {
    "mk01": "98747a4cdc55f9ab0f148c9a694a227e3e32be78bf28c3dad33a51566331921c",
    "mk02": "404fad7be5aaa84167957256652b5b0a35eb2b3e426ff06c18cbaa1ece7f36e5",
    "mk03": "8bb29792d8c8eead88af4144104815fba6e992006fc907ada3f1f638b1a24b11",
    "mk04": "5891700a397d012c3e4ec7aaa7a5b9d929ea8c29298ccd2d29fdf91b5d2741f0",
    "mk05": "86b960b931ac30b49a2ba2bf1bad96754d09140d05437b8b326bf96a53b0a4cd",
}

CMAPSS = Dataset(
    name="cmapss",
    title="NASA C-MAPSS turbofan engine degradation, subset FD001",
    folder="cmapss",
    licence="US government work, public domain",
    citation=(
        "A. Saxena, K. Goebel, D. Simon, N. Eklund, 'Damage Propagation Modeling for Aircraft "
        "Engine Run-to-Failure Simulation', PHM 2008"
    ),
    homepage=(
        "https://www.nasa.gov/intelligent-systems-division/discovery-and-systems-health/pcoe/"
        "pcoe-data-set-repository/"
    ),
    files=(
        DataFile(
            "cmapss/train_FD001.txt",
            "963b5e22825b34d8b21c69e1aeb4af3e647050eb672ee8834ba4b5d91d2de0f8",
        ),
        DataFile(
            "cmapss/test_FD001.txt",
            "3cda7109ce17bafb5443f2ac926cfcf88154b941b8c4cf95eb55d1ddd6f52851",
        ),
        DataFile(
            "cmapss/RUL_FD001.txt",
            "a19c8ec94931949d0485bdc35118206e9c81c4547b422efb9cf86f4ceddbceca",
        ),
        DataFile(
            "cmapss/readme.txt",
            "4f5270554b775c67e73aff383c5436fd329d6e4cc3d3a116913276fae511269b",
        ),
    ),
    sources=(
        # Confirmed: the NASA PCoE repository's download. A public fetch script pins this zip
        # at 12,429,152 bytes with SHA-256
        # c9c5dec12a945a82e8bb4446589d7fb3cc057b5e5d81fa1a12e25ee9912ad3b2, unzips the inner
        # CMAPSSData.zip at the member path used here, and checks the same three FD001
        # SHA-256 values as this catalogue. The readme.txt checksum is unconfirmed.
        Source(
            "https://phm-datasets.s3.amazonaws.com/NASA",
            (
                Download(
                    "6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip",
                    tuple(
                        Extract(f"cmapss/{name}", member=(_CMAPSS_S3_INNER_ZIP, name))
                        for name in _CMAPSS_FILES
                    ),
                ),
            ),
        ),
        # Confirmed address: NASA's open-data portal. Public code records this zip as 12,425,978
        # bytes (SHA-256 74bef434a34db25c7bf72e668ea4cd52afe5f2cf8e44367c55a82bfd91a5a34f) with
        # readme.txt and the FD00x text files at its top level. Whether its members match the
        # checksums above is unconfirmed.
        Source(
            "https://data.nasa.gov/docs/legacy",
            (
                Download(
                    "CMAPSSData.zip",
                    tuple(Extract(f"cmapss/{name}", member=(name,)) for name in _CMAPSS_FILES),
                ),
            ),
        ),
    ),
)

AI4I2020 = Dataset(
    name="ai4i2020",
    title="AI4I 2020 predictive maintenance data (milling)",
    folder="ai4i2020",
    licence="CC BY 4.0",
    citation=(
        "S. Matzka, 'Explainable Artificial Intelligence for Predictive Maintenance "
        "Applications', AI4I 2020; UCI Machine Learning Repository, doi:10.24432/C5HS5C"
    ),
    homepage="https://archive.ics.uci.edu/dataset/601/ai4i+2020+predictive+maintenance+dataset",
    files=(
        DataFile(
            "ai4i2020/ai4i2020.csv",
            "7d0663a632a1a045144d504b34ab64e52efa3d55ad99d8d7c3a61b751e20c8fb",
        ),
    ),
    sources=(
        # Confirmed address and member name: many public scripts download this UCI zip and read
        # its member ai4i2020.csv. The SHA-256 is that of the stored copy, which starts with a
        # UTF-8 byte order mark, names its ninth column "Machine_failure" and ends lines with
        # CRLF. Public code mostly reads a column "Machine failure", so whether UCI serves the
        # same bytes today is unconfirmed.
        Source(
            "https://archive.ics.uci.edu/static/public/601",
            (
                Download(
                    "ai4i+2020+predictive+maintenance+dataset.zip",
                    (Extract("ai4i2020/ai4i2020.csv", member=("ai4i2020.csv",)),),
                ),
            ),
        ),
        # Confirmed in older public code: UCI's previous direct CSV address. Unconfirmed that it
        # is still served.
        Source(
            "https://archive.ics.uci.edu/ml/machine-learning-databases/00601",
            (_direct("ai4i2020.csv", "ai4i2020/ai4i2020.csv"),),
        ),
    ),
)

BRANDIMARTE = Dataset(
    name="brandimarte",
    title="Brandimarte flexible job-shop instances MK01-MK05",
    folder="fjsp/brandimarte",
    licence="public benchmark instances; the hosting repository ships no licence file",
    citation=(
        "P. Brandimarte, 'Routing and scheduling in a flexible job shop by tabu search', "
        "Annals of Operations Research 41(3):157-183, 1993"
    ),
    homepage="https://github.com/Noha-Warda/Solving-FJSP-Using-Marine-Predators-Algorithm",
    files=tuple(
        DataFile(f"fjsp/brandimarte/{name}.fjs", sha256)
        for name, sha256 in _BRANDIMARTE_INSTANCES.items()
    ),
    sources=(
        # Confirmed in a public code index: this repository's Mk01.fjs-Mk05.fjs, pinned to the
        # commit below, have the sizes of the stored files (614, 1109, 2584, 937 and 997 bytes,
        # CRLF line endings, header "10 6<TAB>"), and Mk01.fjs matches byte for byte. Common
        # copies elsewhere differ: SchedulingLab/fjsp-instances numbers machines from 0, and
        # others write "10 6 2" in the header. The instances' original home, Monaldo
        # Mastrolilli's FJSP page at IDSIA, is not used because its archive could not be checked.
        Source(
            "https://raw.githubusercontent.com/Noha-Warda/Solving-FJSP-Using-Marine-Predators-"
            "Algorithm/f427b6acee84c7d451f2f2b95b9d06db08e934b1",
            tuple(
                _direct(f"Mk{name[2:]}.fjs", f"fjsp/brandimarte/{name}.fjs")
                for name in _BRANDIMARTE_INSTANCES
            ),
        ),
    ),
)

JSPLIB = Dataset(
    name="jsplib",
    title="JSPLIB job-shop instances FT06, FT10, FT20, LA01-LA20 with optimal makespans",
    folder="jsplib",
    licence="public benchmark instances; the JSPLIB repository ships no licence file",
    citation=(
        "J. F. Muth, G. L. Thompson, 'Industrial Scheduling', Prentice-Hall, 1963 (FT06, FT10, "
        "FT20); S. Lawrence, 'Resource constrained project scheduling: an experimental "
        "investigation of heuristic scheduling techniques (Supplement)', Carnegie-Mellon "
        "University, 1984 (LA01-LA20)"
    ),
    homepage="https://github.com/tamy0612/JSPLIB",
    files=(
        DataFile(
            "jsplib/instances.json",
            "6aa7b23c53eb46e544950930641ed62d6f52c4a7b1476f7d4bf916432a47a03f",
        ),
        *(DataFile(f"jsplib/instances/{name}", sha) for name, sha in _JSPLIB_INSTANCES.items()),
    ),
    sources=(
        # Confirmed: many public scripts fetch instances from this address on branch master.
        # ft20 and la17 in a public code index match the catalogue checksums byte for byte.
        # JSPLIB's own instances.json lists every instance, so it is cut down to this subset.
        Source(
            "https://raw.githubusercontent.com/tamy0612/JSPLIB/master",
            (
                Download(
                    "instances.json",
                    (Extract("jsplib/instances.json", derive="jsplib_subset"),),
                ),
                *(
                    _direct(f"instances/{name}", f"jsplib/instances/{name}")
                    for name in _JSPLIB_INSTANCES
                ),
            ),
        ),
    ),
)

CATALOGUE: tuple[Dataset, ...] = (CMAPSS, AI4I2020, BRANDIMARTE, JSPLIB)


def dataset_names() -> list[str]:
    """Return the names of the catalogued datasets, in catalogue order."""
    return [dataset.name for dataset in CATALOGUE]


def get_dataset(name: str) -> Dataset:
    """Return the catalogue entry called ``name``, or raise ValueError for an unknown name."""
    for dataset in CATALOGUE:
        if dataset.name == name:
            return dataset
    raise ValueError(f"unknown dataset {name!r}. Known datasets: {', '.join(dataset_names())}")


# --- Derived files ----------------------------------------------------------------------------


def _jsplib_subset(raw: bytes, dataset: Dataset) -> bytes:
    """Keep the entries of JSPLIB's instances.json for the instance files in the catalogue.

    The upstream file lists every JSPLIB instance and changes whenever a bound improves, so the
    product stores only its own instances, in catalogue order, written by `json.dumps` with a
    one-space indent and no final newline.
    """
    instances_folder = PurePosixPath(dataset.folder, "instances")
    kept_names = [
        PurePosixPath(data_file.path).name
        for data_file in dataset.files
        if PurePosixPath(data_file.path).parent == instances_folder
    ]

    try:
        entries = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DownloadError(f"JSPLIB instances.json is not valid JSON: {error}") from error
    if not isinstance(entries, list):
        raise DownloadError("JSPLIB instances.json is not a JSON list of instances")

    by_name = {entry.get("name"): entry for entry in entries if isinstance(entry, dict)}
    absent = [name for name in kept_names if name not in by_name]
    if absent:
        raise DownloadError(f"JSPLIB instances.json has no entry for {', '.join(absent)}")

    return json.dumps([by_name[name] for name in kept_names], indent=1).encode("utf-8")


_DERIVATIONS: Mapping[str, Callable[[bytes, Dataset], bytes]] = {
    "jsplib_subset": _jsplib_subset,
}


# --- Errors and results ------------------------------------------------------------------------


class DatasetError(Exception):
    """Base class for problems with the datasets or the data folder."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is not in the data folder."""


class DownloadError(DatasetError):
    """A source could not be reached, or its download lacks what the catalogue expects."""


class ChecksumError(DatasetError):
    """A downloaded file's SHA-256 differs from the catalogue, so the file was discarded."""

    def __init__(self, relative_path: str, expected: str, actual: str, source_url: str) -> None:
        self.relative_path = relative_path
        self.expected = expected
        self.actual = actual
        self.source_url = source_url
        super().__init__(
            f"checksum mismatch for {relative_path} from {source_url}: expected SHA-256 "
            f"{expected}, got {actual}. The downloaded file was discarded. The download may be "
            "corrupt or the source may have changed: run `plantpulse data fetch` again, and if "
            f"it fails the same way, get the file by hand, check its SHA-256 and set "
            f"{DATA_DIR_ENV} to the folder that contains it."
        )


@dataclass(frozen=True)
class FetchedFile:
    """A dataset file that `fetch_datasets` downloaded or found already in place."""

    dataset: str
    relative_path: str
    path: Path
    sha256: str
    status: Literal["downloaded", "already present"]
    source_url: str | None
    licence: str


@dataclass(frozen=True)
class DataProblem:
    """A catalogued file that is missing, unreadable or has the wrong SHA-256."""

    dataset: str
    relative_path: str
    kind: Literal["missing", "checksum mismatch", "unreadable"]
    expected_sha256: str
    actual_sha256: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "checksum mismatch":
            return (
                f"{self.relative_path}: checksum mismatch, expected SHA-256 "
                f"{self.expected_sha256}, got {self.actual_sha256}"
            )
        if self.kind == "unreadable":
            return f"{self.relative_path}: unreadable ({self.detail})"
        return f"{self.relative_path}: missing"


# --- The data folder ---------------------------------------------------------------------------


def resolve_data_dir(explicit: Path | None = None) -> Path:
    """Return the data folder, chosen in this order.

    1. ``explicit``, when given.
    2. The ``PLANTPULSE_DATA_DIR`` environment variable, when set and not empty.
    3. A ``shared/data`` folder beside a checkout: walking up from the current working
       directory, then from this package's own folder, the first folder that contains a
       ``pyproject.toml`` and whose parent contains ``shared/data``.
    4. ``plantpulse/data`` in the user's cache: ``$XDG_CACHE_HOME`` when it is an absolute
       path, otherwise ``~/.cache``.

    The folder is not created and may not exist yet.
    """
    return _resolve_data_dir(explicit)[0]


def _resolve_data_dir(explicit: Path | None) -> tuple[Path, str]:
    """Return the data folder and a phrase naming where it came from, for messages."""
    if explicit is not None:
        return Path(explicit).expanduser(), "the path passed in"

    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser(), f"${DATA_DIR_ENV}"

    for start in (Path.cwd(), _PACKAGE_DIR):
        shared = _shared_data_beside_checkout(start)
        if shared is not None:
            return shared, f"the checkout next to {shared.parent}"

    return _user_cache_dir() / "plantpulse" / "data", "the user cache (the default)"


def _shared_data_beside_checkout(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            candidate = folder.parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    return None


def default_cache_dir() -> Path:
    """Return the user-cache data folder that `plantpulse data fetch` fills by default."""
    return _user_cache_dir() / "plantpulse" / "data"


def _user_cache_dir() -> Path:
    xdg_cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG Base Directory Specification treats a relative path here as invalid.
    if xdg_cache and Path(xdg_cache).is_absolute():
        return Path(xdg_cache)
    return Path.home() / ".cache"


def dataset_path(name: str, relative: str, data_dir: Path | None = None) -> Path:
    """Return the path of ``relative`` inside dataset ``name``'s folder of the data folder.

    ``relative`` is a POSIX path below the dataset folder, such as ``"train_FD001.txt"`` for
    ``"cmapss"`` or ``"instances/ft06"`` for ``"jsplib"``. The data folder is ``data_dir`` or
    else `resolve_data_dir`'s choice. Raises ValueError for an unknown dataset or a path that
    leaves the dataset folder, and DatasetNotFoundError when the file is not there.
    """
    dataset = get_dataset(name)

    relative_path = PurePosixPath(relative)
    if relative_path.is_absolute() or ".." in relative_path.parts or not relative_path.parts:
        raise ValueError(
            f"invalid path {relative!r} for dataset {name!r}: give a relative path inside its "
            f"folder {dataset.folder}/, such as {PurePosixPath(dataset.files[0].path).name!r}"
        )

    root, origin = _resolve_data_dir(None)
    if data_dir is not None and Path(data_dir).expanduser() != root:
        root, origin = Path(data_dir).expanduser(), "the path passed in"

    path = root / dataset.folder / relative_path
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{dataset.title}: {dataset.folder}/{relative_path} not found in data folder {root} "
            f"(chosen from {origin}). Run `plantpulse data fetch` to download the datasets "
            f"there, or set {DATA_DIR_ENV} to a folder that already contains them."
        )
    return path


def verify_data_dir(path: Path, names: Sequence[str] | None = None) -> list[DataProblem]:
    """Check every catalogued file of the named datasets (all by default) in data folder ``path``.

    Returns one DataProblem per file that is missing, unreadable or has the wrong SHA-256. An
    empty list means the folder is complete. Files the catalogue does not list are ignored.
    """
    problems: list[DataProblem] = []
    for dataset in _select_datasets(names):
        for data_file in dataset.files:
            target = Path(path) / data_file.path
            if not target.is_file():
                problems.append(
                    DataProblem(dataset.name, data_file.path, "missing", data_file.sha256)
                )
                continue

            try:
                actual = _sha256_of_file(target)
            except OSError as error:
                problems.append(
                    DataProblem(
                        dataset.name,
                        data_file.path,
                        "unreadable",
                        data_file.sha256,
                        detail=str(error),
                    )
                )
                continue

            if actual != data_file.sha256:
                problems.append(
                    DataProblem(
                        dataset.name, data_file.path, "checksum mismatch", data_file.sha256, actual
                    )
                )
    return problems


# --- Fetching ----------------------------------------------------------------------------------


def fetch_datasets(
    dest: Path,
    names: Sequence[str] | None = None,
    base_url_override: Mapping[str, str] | None = None,
    progress: bool = True,
) -> list[FetchedFile]:
    """Download the named datasets (all by default) into data folder ``dest`` and verify them.

    A file already in place with the catalogue's SHA-256 is not downloaded again. Every other
    file is downloaded, or extracted from its zip, into a temporary file next to its target,
    checked, and moved into place with `os.replace`, so no target is ever left half-written.
    A download whose SHA-256 is wrong is deleted. A file already in place with a wrong SHA-256
    stays until a good download replaces it. A dataset's sources are tried in order for the
    files still missing.

    ``base_url_override`` maps a dataset name to a base URL that replaces its primary source's
    base URL. That dataset's other sources are then not tried. ``progress`` shows a progress
    bar per download on stderr.

    Returns one FetchedFile per catalogued file, in catalogue order. Raises ValueError for an
    unknown dataset name, ChecksumError when no source yields a file with the right SHA-256, and
    DownloadError when no source can be downloaded. Files completed before the error stay.
    """
    datasets = _select_datasets(names)
    overrides = dict(base_url_override or {})
    unknown = sorted(set(overrides) - set(dataset_names()))
    if unknown:
        raise ValueError(
            f"base_url_override names unknown datasets {', '.join(unknown)}. Known datasets: "
            f"{', '.join(dataset_names())}"
        )

    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)

    # A fresh opener reads the proxy settings from the environment as they are now.
    opener = urllib.request.build_opener()

    fetched: list[FetchedFile] = []
    for dataset in datasets:
        sources = _sources_for(dataset, overrides.get(dataset.name))
        fetched.extend(_fetch_dataset(dataset, dest, sources, opener, progress))
    return fetched


def _select_datasets(names: Sequence[str] | None) -> list[Dataset]:
    if names is None:
        return list(CATALOGUE)
    if isinstance(names, str):
        raise TypeError("names must be a sequence of dataset names, not a single string")
    unique_names = list(dict.fromkeys(names))
    return [get_dataset(name) for name in unique_names]


def _sources_for(dataset: Dataset, base_url: str | None) -> tuple[Source, ...]:
    sources = dataset.sources
    if base_url is not None:
        sources = (Source(base_url, dataset.sources[0].downloads),)

    for source in sources:
        scheme = urllib.parse.urlsplit(source.base_url).scheme
        if scheme not in _ALLOWED_SCHEMES:
            raise ValueError(
                f"invalid base URL {source.base_url!r} for dataset {dataset.name!r}: the scheme "
                f"must be one of {', '.join(_ALLOWED_SCHEMES)}"
            )
    return sources


def _fetch_dataset(
    dataset: Dataset,
    dest: Path,
    sources: Sequence[Source],
    opener: urllib.request.OpenerDirector,
    progress: bool,
) -> list[FetchedFile]:
    logger.info(
        "Dataset %s (%s): licence: %s. Cite: %s. Home page: %s",
        dataset.name,
        dataset.title,
        dataset.licence,
        dataset.citation,
        dataset.homepage,
    )

    results: dict[str, FetchedFile] = {}
    missing: dict[str, DataFile] = {}
    for data_file in dataset.files:
        target = dest / data_file.path
        actual = _sha256_of_file(target) if target.is_file() else None
        if actual == data_file.sha256:
            logger.info("Already present with the right SHA-256: %s", target)
            results[data_file.path] = _fetched(dataset, data_file, dest, "already present", None)
            continue
        if actual is not None:
            logger.warning(
                "%s has SHA-256 %s, expected %s, so it is downloaded again",
                target,
                actual,
                data_file.sha256,
            )
        missing[data_file.path] = data_file

    if missing:
        failures = _fetch_missing(dataset, dest, sources, missing, results, opener, progress)
        if missing:
            raise _error_for_first_missing(dataset, dest, missing, failures)

    return [results[data_file.path] for data_file in dataset.files]


def _fetch_missing(
    dataset: Dataset,
    dest: Path,
    sources: Sequence[Source],
    missing: dict[str, DataFile],
    results: dict[str, FetchedFile],
    opener: urllib.request.OpenerDirector,
    progress: bool,
) -> dict[str, list[DatasetError]]:
    """Fill ``results`` from the sources and remove each file done from ``missing``.

    Returns the errors met per file, so the caller can report the files still missing.
    """
    failures: dict[str, list[DatasetError]] = {}

    # Downloads go to a scratch folder inside dest, on the same file system as the targets.
    with tempfile.TemporaryDirectory(prefix=".plantpulse-fetch-", dir=dest) as scratch_name:
        scratch = Path(scratch_name)

        for source_index, source in enumerate(sources):
            for download_index, download in enumerate(source.downloads):
                needed = [extract for extract in download.extracts if extract.target in missing]
                if not needed:
                    continue

                url = source.url_for(download)
                downloaded = scratch / f"download-{source_index}-{download_index}"
                try:
                    _download(opener, url, downloaded, progress)
                except DownloadError as error:
                    logger.warning("Dataset %s: %s", dataset.name, error)
                    for extract in needed:
                        failures.setdefault(extract.target, []).append(error)
                    continue

                for extract in needed:
                    data_file = missing[extract.target]
                    try:
                        digest = _install(
                            dataset, extract, data_file, downloaded, url, dest, scratch
                        )
                    except DatasetError as error:
                        logger.warning("Dataset %s: %s", dataset.name, error)
                        failures.setdefault(extract.target, []).append(error)
                        continue

                    logger.info("Downloaded %s from %s (SHA-256 %s)", data_file.path, url, digest)
                    results[data_file.path] = _fetched(dataset, data_file, dest, "downloaded", url)
                    del missing[data_file.path]

                # Free the disk before the next download. The scratch folder is removed last.
                downloaded.unlink(missing_ok=True)

    return failures


def _error_for_first_missing(
    dataset: Dataset,
    dest: Path,
    missing: Mapping[str, DataFile],
    failures: Mapping[str, list[DatasetError]],
) -> DatasetError:
    """Pick the error to raise: a checksum mismatch first, because it is the most specific."""
    for relative_path in missing:
        logger.error("Dataset %s: fetch failed for %s", dataset.name, relative_path)
        if (dest / relative_path).exists():
            logger.warning(
                "%s still contains the earlier copy with the wrong SHA-256", dest / relative_path
            )

    first = next(iter(missing))
    errors = failures.get(first, [])
    for error in errors:
        if isinstance(error, ChecksumError):
            return error
    if errors:
        return errors[-1]
    return DatasetError(
        f"no source of dataset {dataset.name!r} provides {first}, so the catalogue is incomplete"
    )


def _fetched(
    dataset: Dataset,
    data_file: DataFile,
    dest: Path,
    status: Literal["downloaded", "already present"],
    source_url: str | None,
) -> FetchedFile:
    return FetchedFile(
        dataset=dataset.name,
        relative_path=data_file.path,
        path=dest / data_file.path,
        sha256=data_file.sha256,
        status=status,
        source_url=source_url,
        licence=dataset.licence,
    )


def _download(
    opener: urllib.request.OpenerDirector, url: str, destination: Path, progress: bool
) -> None:
    """Stream ``url`` into ``destination``, retrying connection failures and 5xx responses."""
    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        logger.info("Downloading %s (attempt %d of %d)", url, attempt, _DOWNLOAD_ATTEMPTS)
        try:
            _download_once(opener, url, destination, progress)
            return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == _DOWNLOAD_ATTEMPTS:
                raise DownloadError(
                    f"download of {url} failed with HTTP {error.code} {error.reason}. Check the "
                    "address, or pass a working mirror as the base URL override"
                ) from error
            reason = f"HTTP {error.code} {error.reason}"
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as error:
            if attempt == _DOWNLOAD_ATTEMPTS:
                raise DownloadError(
                    f"download of {url} failed after {attempt} attempts: {error}. Check the "
                    "network connection and proxy settings, then run `plantpulse data fetch` "
                    "again"
                ) from error
            reason = str(error)

        logger.warning("Download of %s failed (%s); retrying", url, reason)
        time.sleep(attempt)


def _download_once(
    opener: urllib.request.OpenerDirector, url: str, destination: Path, progress: bool
) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with opener.open(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        expected_bytes = int(length) if length and length.isdigit() else None
        received = 0

        with (
            destination.open("wb") as out,
            tqdm(
                total=expected_bytes,
                unit="B",
                unit_scale=True,
                desc=PurePosixPath(urllib.parse.urlsplit(url).path).name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))

    if expected_bytes is not None and received != expected_bytes:
        raise ConnectionError(
            f"connection closed after {received} of {expected_bytes} bytes of {url}"
        )


def _install(
    dataset: Dataset,
    extract: Extract,
    data_file: DataFile,
    downloaded: Path,
    url: str,
    dest: Path,
    scratch: Path,
) -> str:
    """Write one extract to its target through a temporary file and return its SHA-256.

    Raises ChecksumError, after deleting the temporary file, when the SHA-256 is wrong.
    """
    target = dest / data_file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, part_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    part = Path(part_name)

    try:
        try:
            with (
                os.fdopen(handle, "wb") as out,
                _open_extract(downloaded, extract.member, url, scratch) as stream,
            ):
                if extract.derive is not None:
                    content = _DERIVATIONS[extract.derive](stream.read(), dataset)
                    out.write(content)
                    digest = hashlib.sha256(content).hexdigest()
                else:
                    digest = _copy_and_hash(stream, out)
                out.flush()
                os.fsync(out.fileno())
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise DownloadError(f"zip archive {url} is damaged: {error}") from error

        if digest != data_file.sha256:
            raise ChecksumError(data_file.path, data_file.sha256, digest, url)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise

    return digest


@contextmanager
def _open_extract(
    downloaded: Path, member: tuple[str, ...], url: str, scratch: Path
) -> Iterator[IO[bytes]]:
    """Open the file at the end of a chain of zip members, the download itself when empty."""
    if not member:
        with downloaded.open("rb") as stream:
            yield stream
        return

    try:
        archive = zipfile.ZipFile(downloaded)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{url} is not a valid zip archive: {error}") from error

    with archive:
        info = _find_member(archive, member[0], url)
        if len(member) == 1:
            with archive.open(info) as stream:
                yield stream
            return

        # A nested zip must be seekable, so it is unpacked once into the scratch folder and
        # reused for the other files it contains.
        key = hashlib.sha256(f"{downloaded}\0{info.filename}".encode()).hexdigest()[:16]
        nested = scratch / f"nested-{key}.zip"
        if not nested.exists():
            partial = scratch / f"nested-{key}.part"
            try:
                with archive.open(info) as source, partial.open("wb") as out:
                    _copy_and_hash(source, out)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(nested)

    with _open_extract(nested, member[1:], f"{url} (member {info.filename})", scratch) as stream:
        yield stream


def _find_member(archive: zipfile.ZipFile, name: str, url: str) -> zipfile.ZipInfo:
    """Find ``name`` by its full name, else by its last path component if that is unique."""
    try:
        return archive.getinfo(name)
    except KeyError:
        pass

    basename = PurePosixPath(name).name
    candidates = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and PurePosixPath(info.filename).name == basename
        and "__MACOSX" not in PurePosixPath(info.filename).parts
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DownloadError(f"zip archive {url} has no member {name!r}")
    raise DownloadError(
        f"zip archive {url} has several members named {basename!r}: "
        f"{', '.join(info.filename for info in candidates)}"
    )


def _copy_and_hash(source: IO[bytes], out: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(_CHUNK_BYTES):
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
