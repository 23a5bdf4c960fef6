"""The weights manager: hub cache found offline, misses that say what to do, imports, removal,
and URL downloads from a local server (no network)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import WeightsError
from engine.models.catalog import Catalog, FileSource, HubSource, ModelEntry, UrlSource, default_catalog
from engine.models.weights import WeightsManager, default_root, read_state_dict

REV = "0123456789abcdef0123456789abcdef01234567"


def _weights_bytes(tmp: Path, value: float = 1.0) -> bytes:
    path = tmp / f"w{value}.safetensors"
    save_file({"a": torch.full((4, 4), value), "b": torch.arange(3.0)}, str(path))
    return path.read_bytes()


def _prefill_hub(cache: Path, repo_id: str, filename: str, data: bytes) -> Path:
    """The folder layout huggingface_hub writes: blobs, a snapshot symlink, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    snap = repo / "snapshots" / REV / filename
    snap.parent.mkdir(parents=True)
    snap.symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV)
    return snap


def test_default_root_is_the_platform_cache_dir() -> None:
    import platformdirs

    assert default_root() == Path(platformdirs.user_cache_dir("maskwright"))
    assert WeightsManager(default_catalog()).root == default_root()


def test_prefilled_hub_cache_resolves_offline(tmp_path: Path) -> None:
    catalog = default_catalog()
    manager = WeightsManager(catalog, tmp_path, offline=True)
    data = _weights_bytes(tmp_path)
    snap = _prefill_hub(manager.hub_cache, "timm/vit_base_patch16_clip_224.openai", "open_clip_model.safetensors", data)
    found = manager.ensure_local("ViT-B-16-quickgelu.openai")
    assert found == snap and found.read_bytes() == data
    assert manager.is_local("ViT-B-16-quickgelu.openai")
    assert not manager.is_local("ViT-B-16.laion2b_s34b_b88k")
    assert manager.download("ViT-B-16-quickgelu.openai") == snap  # present: no network needed
    assert set(read_state_dict(found)) == {"a", "b"}


def test_offline_miss_fails_fast_with_the_commands(tmp_path: Path) -> None:
    manager = WeightsManager(default_catalog(), tmp_path, offline=True)
    with pytest.raises(WeightsError) as info:
        manager.ensure_local("ViT-B-16.laion2b_s34b_b88k")
    msg = str(info.value)
    assert "open_clip_model.safetensors" in msg
    assert "`maskwright models download ViT-B-16.laion2b_s34b_b88k`" in msg
    assert "`maskwright models import FILE --name ViT-B-16.laion2b_s34b_b88k`" in msg
    assert "huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K/resolve/main/" in msg
    with pytest.raises(WeightsError, match="offline"):
        manager.ensure_local("ViT-B-16.laion2b_s34b_b88k", allow_download=True)


def test_offline_follows_hf_hub_offline_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = WeightsManager(default_catalog(), tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert manager.offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not manager.offline


def test_import_by_name_then_remove(tmp_path: Path) -> None:
    manager = WeightsManager(default_catalog(), tmp_path / "cache", offline=True)
    src = tmp_path / "downloaded_elsewhere.safetensors"
    src.write_bytes(_weights_bytes(tmp_path))
    dest = manager.import_file(src, "ViT-B-16.laion2b_s34b_b88k")
    assert dest == manager.file_slot("ViT-B-16.laion2b_s34b_b88k") and dest.read_bytes() == src.read_bytes()
    assert src.exists()  # copied, not moved
    assert manager.ensure_local("ViT-B-16.laion2b_s34b_b88k") == dest
    assert manager.remove("ViT-B-16.laion2b_s34b_b88k") == [dest]
    assert not manager.is_local("ViT-B-16.laion2b_s34b_b88k")


def test_remove_deletes_hub_snapshot_and_blob(tmp_path: Path) -> None:
    manager = WeightsManager(default_catalog(), tmp_path, offline=True)
    snap = _prefill_hub(manager.hub_cache, "timm/vit_base_patch16_clip_224.openai", "open_clip_model.safetensors",
                        _weights_bytes(tmp_path))
    blob = snap.resolve()
    removed = manager.remove("ViT-B-16-quickgelu.openai")
    assert removed == [snap, blob] and not blob.exists()
    assert not manager.is_local("ViT-B-16-quickgelu.openai")


def _catalog_with(entry: ModelEntry) -> Catalog:
    catalog = Catalog()
    catalog.register(entry)
    return catalog


def test_import_checks_the_catalog_checksum_and_matches_by_checksum(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    good.write_bytes(_weights_bytes(tmp_path, 1.0))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(_weights_bytes(tmp_path, 2.0))
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    entry = ModelEntry(name="tiny.url", kind="photo", architecture="open_clip",
                       source=UrlSource("http://127.0.0.1:9/good.safetensors", sha, "good.safetensors"))
    manager = WeightsManager(_catalog_with(entry), tmp_path / "cache", offline=True)
    with pytest.raises(WeightsError, match="not the weights of tiny.url") as info:
        manager.import_file(bad, "tiny.url")
    assert info.value.path == bad
    with pytest.raises(WeightsError, match="--name"):
        manager.import_file(bad)
    assert manager.import_file(good) == manager.file_slot("tiny.url")
    assert manager.verify("tiny.url") == sha


def test_import_refuses_files_that_are_not_weights(tmp_path: Path) -> None:
    manager = WeightsManager(default_catalog(), tmp_path / "cache", offline=True)
    junk = tmp_path / "notes.safetensors"
    junk.write_bytes(b"this is not a safetensors file")
    with pytest.raises(WeightsError, match="not a weights file"):
        manager.import_file(junk, "ViT-B-16.laion2b_s34b_b88k")
    with pytest.raises(WeightsError, match="no such file"):
        manager.import_file(tmp_path / "missing.bin", "ViT-B-16.laion2b_s34b_b88k")
    assert not manager.is_local("ViT-B-16.laion2b_s34b_b88k")


def test_file_source_is_verified_and_a_moved_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    path.write_bytes(_weights_bytes(tmp_path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    catalog = Catalog()
    catalog.register(ModelEntry(name="project.ok", kind="photo", architecture="open_clip", source=FileSource(path, sha)))
    catalog.register(ModelEntry(name="project.bad", kind="photo", architecture="open_clip",
                                source=FileSource(path, "1" * 64)))
    catalog.register(ModelEntry(name="project.gone", kind="photo", architecture="open_clip",
                                source=FileSource(tmp_path / "gone.safetensors")))
    manager = WeightsManager(catalog, tmp_path / "cache", offline=True)
    assert manager.ensure_local("project.ok") == path
    with pytest.raises(WeightsError, match="checksum mismatch"):
        manager.ensure_local("project.bad")
    with pytest.raises(WeightsError, match="moved or deleted") as info:
        manager.ensure_local("project.gone", allow_download=True)
    assert info.value.path == tmp_path / "gone.safetensors"
    assert manager.remove("project.ok") == [] and path.exists()  # never deletes the person's file


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    served = tmp_path / "served"
    served.mkdir()
    (served / "w.safetensors").write_bytes(_weights_bytes(tmp_path, 3.0))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/w.safetensors", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_entry_downloads_only_when_asked(tmp_path: Path, file_server: tuple[str, list[str]]) -> None:
    url, requests = file_server
    data = _weights_bytes(tmp_path, 3.0)
    entry = ModelEntry(name="tiny.remote", kind="photo", architecture="open_clip",
                       source=UrlSource(url, hashlib.sha256(data).hexdigest(), "w.safetensors"))
    manager = WeightsManager(_catalog_with(entry), tmp_path / "cache", offline=False)
    with pytest.raises(WeightsError, match="maskwright models download tiny.remote"):
        manager.ensure_local("tiny.remote")
    assert requests == []  # nothing downloaded behind the person's back
    events: list[int] = []
    path = manager.ensure_local("tiny.remote", allow_download=True, progress=lambda d, t, m: events.append(d))
    assert path.read_bytes() == data and events[-1] == len(data)
    assert len(requests) == 1
    assert manager.ensure_local("tiny.remote") == path and len(requests) == 1


def test_hub_source_entry_fields() -> None:
    entry = default_catalog().get("ViT-B-16-quickgelu.openai")
    assert isinstance(entry.source, HubSource)
    assert entry.source.filename.endswith(".safetensors")


def test_import_reports_byte_progress_and_cancel_leaves_nothing(tmp_path: Path) -> None:
    from engine.errors import Cancelled
    from engine.jobs import CancelToken

    src = tmp_path / "big.safetensors"
    save_file({"w": torch.zeros(700_000)}, str(src))  # ~2.8 MB: several 1 MiB chunks
    size = src.stat().st_size
    manager = WeightsManager(default_catalog(), tmp_path / "cache", offline=True)
    events: list[tuple[int, int]] = []
    manager.import_file(src, "ViT-B-16.laion2b_s34b_b88k", progress=lambda d, t, m: events.append((d, t)))
    assert events[-1] == (2 * size, 2 * size) and len(events) >= 6
    manager.remove("ViT-B-16.laion2b_s34b_b88k")
    cancel = CancelToken()

    def stop_while_copying(done: int, total: int, message: str) -> None:
        if message.startswith("copying"):
            cancel.cancel()

    with pytest.raises(Cancelled):
        manager.import_file(src, "ViT-B-16.laion2b_s34b_b88k", progress=stop_while_copying, cancel=cancel)
    slot = manager.file_slot("ViT-B-16.laion2b_s34b_b88k")
    assert not manager.is_local("ViT-B-16.laion2b_s34b_b88k")
    assert not slot.parent.exists() or list(slot.parent.iterdir()) == []


def test_import_accepts_legacy_torch_files_without_unpickling_objects(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.pt"
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 6}, legacy, _use_new_zipfile_serialization=False)
    manager = WeightsManager(default_catalog(), tmp_path / "cache", offline=True)
    assert manager.import_file(legacy, "ViT-B-16.laion2b_s34b_b88k").read_bytes() == legacy.read_bytes()
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "obj": Path("x")}, evil)  # an arbitrary object: refused by weights_only
    with pytest.raises(WeightsError, match="not a weights file"):
        manager.import_file(evil, "ViT-B-16-quickgelu.openai")


def test_default_root_follows_the_environment_at_call_time(tmp_path, monkeypatch) -> None:
    from engine.models.weights import default_root

    monkeypatch.setenv("MASKWRIGHT_CACHE_DIR", str(tmp_path / "w"))
    assert default_root() == tmp_path / "w"
    monkeypatch.delenv("MASKWRIGHT_CACHE_DIR")
    assert default_root() != tmp_path / "w"
